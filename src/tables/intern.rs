//! A small string interner for the columns whose values repeat on almost every row
//! (header-name lists, routes, content types, hosts). Rows hold a `u32` until the
//! DataFrame is built, so memory grows with distinct values, not with exchanges.

use rustc_hash::FxHashMap;

#[derive(Default)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.into());
        self.ids.insert(value.into(), id);
        id
    }

    pub fn intern_opt(&mut self, value: Option<&str>) -> Option<u32> {
        value.map(|v| self.intern(v))
    }

    pub fn get(&self, id: u32) -> &str {
        &self.values[id as usize]
    }

    /// The strings behind a column of ids, for building a DataFrame column.
    pub fn resolve(&self, ids: Vec<u32>) -> Vec<&str> {
        ids.into_iter().map(|id| self.get(id)).collect()
    }

    pub fn resolve_opt(&self, ids: Vec<Option<u32>>) -> Vec<Option<&str>> {
        ids.into_iter()
            .map(|id| id.map(|id| self.get(id)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_id_distinct_values_distinct_ids() {
        let mut i = Interner::default();
        let a = i.intern("host,accept");
        let b = i.intern("host,user-agent");
        assert_eq!(i.intern("host,accept"), a);
        assert_ne!(a, b);
        assert_eq!(i.get(b), "host,user-agent");
        assert_eq!(i.len(), 2);
    }
}
