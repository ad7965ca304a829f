//! Symbols: a table of distinct strings, each named by a `u32` id. Rows that repeat the
//! same few strings (service names, routes, header-name lists, content types, hosts) hold
//! the id, so memory grows with the distinct values, not with the rows.

use rustc_hash::FxHashMap;

/// The id of an interned string.
pub type Sym = u32;

#[derive(Clone, Debug, Default)]
pub struct Symbols {
    ids: FxHashMap<Box<str>, Sym>,
    values: Vec<Box<str>>,
    /// The id of each address's text, so that a row's addresses are not formatted anew.
    ips: FxHashMap<std::net::IpAddr, Sym>,
}

impl Symbols {
    pub fn intern(&mut self, value: &str) -> Sym {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as Sym;
        self.values.push(value.into());
        self.ids.insert(value.into(), id);
        id
    }

    /// The id of an address's text (`Display`: `10.0.0.7`, `fd00::7`).
    pub fn intern_ip(&mut self, ip: std::net::IpAddr) -> Sym {
        if let Some(&id) = self.ips.get(&ip) {
            return id;
        }
        let id = self.intern(&ip.to_string());
        self.ips.insert(ip, id);
        id
    }

    pub fn intern_opt(&mut self, value: Option<&str>) -> Option<Sym> {
        value.map(|v| self.intern(v))
    }

    /// The string behind `id` (empty for an id this table never gave out).
    pub fn get(&self, id: Sym) -> &str {
        self.values.get(id as usize).map_or("", |s| s)
    }

    pub fn get_opt(&self, id: Option<Sym>) -> Option<&str> {
        id.map(|id| self.get(id))
    }

    pub fn lookup(&self, value: &str) -> Option<Sym> {
        self.ids.get(value).copied()
    }

    /// The strings behind a column of ids, for building a DataFrame column.
    pub fn resolve(&self, ids: Vec<Sym>) -> Vec<&str> {
        ids.into_iter().map(|id| self.get(id)).collect()
    }

    pub fn resolve_opt(&self, ids: Vec<Option<Sym>>) -> Vec<Option<&str>> {
        ids.into_iter().map(|id| self.get_opt(id)).collect()
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
        let mut s = Symbols::default();
        let a = s.intern("host,accept");
        let b = s.intern("host,user-agent");
        assert_eq!(s.intern("host,accept"), a);
        assert_ne!(a, b);
        assert_eq!(s.get(b), "host,user-agent");
        assert_eq!(s.lookup("host,user-agent"), Some(b));
        assert_eq!(s.get(99), "", "an id never given out reads empty");
        assert_eq!(s.len(), 2);
    }
}
