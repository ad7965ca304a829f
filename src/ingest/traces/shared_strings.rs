//! Shared copies of the strings that repeat on every span and call.

use std::sync::Arc;

use rustc_hash::FxHashSet;

/// Distinct strings interned; more are allocated each time.
const MAX_INTERNED: usize = 100_000;
/// Longer strings are not interned (they are rarely repeated names), so the interner
/// holds at most `MAX_INTERNED * MAX_INTERNED_LEN` bytes (26 MB).
const MAX_INTERNED_LEN: usize = 256;

/// Shared copies (`Arc<str>`) of the few distinct strings that repeat on every span and call
/// (services, span names, methods, routes, protocols, peers), so each costs no
/// allocation after the first. Bounded: past `MAX_INTERNED` names, or over
/// `MAX_INTERNED_LEN` bytes, a string is allocated each time (equal either way:
/// names are compared by content, never by pointer). Unlike `model::Symbols`, which
/// hands out ids, the spans and calls keep the strings themselves.
#[derive(Default)]
pub(crate) struct SharedStrings {
    set: FxHashSet<Arc<str>>,
}

impl SharedStrings {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        if self.set.len() < MAX_INTERNED && s.len() <= MAX_INTERNED_LEN {
            self.set.insert(Arc::clone(&a));
        }
        a
    }
}
