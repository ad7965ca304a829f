//! The module import graph has no cycle.
//!
//! Reads every `.rs` file under `src/` (test files and `#[cfg(test)] mod tests { .. }`
//! blocks left out, and `src/testing/`, the tests' own support), collects the paths that
//! start with `crate::`, `super::` or `self::` (`use` lines, brace groups and paths in
//! code alike) and resolves each to the deepest module it names. An edge joins two sibling
//! modules: for a path from `a::b::c` to `a::d::e` the edge is `a::b -> a::d`. A module
//! may use its own ancestors (`super::Type` from a child of the module that declares it);
//! siblings at every level, top-level modules included, must form a DAG.
//!
//! `cargo test --test it architecture:: -- --nocapture` prints the graph of the stages and of
//! the modules inside each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every production source file and the module it defines.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "testing") {
                    stack.push(path);
                }
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            if stem == "tests" || stem.ends_with("_tests") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(stem, "mod" | "lib" | "main") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// The text without line comments and without a trailing `#[cfg(test)] mod tests { .. }`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths at `text[i..]` after a `crate`/`super`/`self` keyword: `a::b`, or a brace
/// group `{a::B, c::{D, E}}` expanded into one path per member.
fn paths_at(text: &str, mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = text.as_bytes();
    let mut path = prefix;
    loop {
        if !text[i..].starts_with("::") {
            out.push(path);
            return;
        }
        i += 2;
        if bytes.get(i) == Some(&b'{') {
            // Split the group's top level at commas.
            let mut depth = 0;
            let mut start = i + 1;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' if depth == 1 => {
                        member(text, start, j, &path, out);
                        start = j + 1;
                    }
                    _ => {}
                }
                j += 1;
            }
            member(text, start, j.min(bytes.len()), &path, out);
            return;
        }
        let end = text[i..]
            .find(|c: char| !is_ident(c))
            .map_or(text.len(), |k| i + k);
        if end == i {
            out.push(path);
            return;
        }
        path.push(text[i..end].to_owned());
        i = end;
    }
}

/// One member of a brace group, `a::b` or `a::{..}`, at `text[start..end]`, under `prefix`.
fn member(text: &str, start: usize, end: usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let raw = &text[start..end];
    let m = raw.trim_start();
    let m_start = start + (raw.len() - m.len());
    let first_end = m.find(|c: char| !is_ident(c)).unwrap_or(m.len());
    if first_end == 0 {
        return;
    }
    let mut path = prefix.to_vec();
    path.push(m[..first_end].to_owned());
    paths_at(&text[..end], m_start + first_end, path, out);
}

/// Every `crate::`, `super::` and `self::` path in `code`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for kw in ["crate", "super", "self"] {
        let mut from = 0;
        while let Some(k) = code[from..].find(kw) {
            let i = from + k;
            from = i + kw.len();
            let before_ok = i == 0 || !is_ident(code[..i].chars().next_back().unwrap());
            if before_ok && code[from..].starts_with("::") {
                paths_at(code, from, vec![kw.to_owned()], &mut out);
            }
        }
    }
    out
}

/// Sibling edges (`a::b -> a::d`) of the crate.
fn edges(src: &Path) -> BTreeSet<(String, String)> {
    let mods = modules(src);
    let mut edges = BTreeSet::new();
    for (module, path) in &mods {
        let text = code(&std::fs::read_to_string(path).unwrap());
        for p in paths(&text) {
            let mut full: Module = Vec::new();
            let mut rest = p.as_slice();
            if rest.first().is_some_and(|s| s == "crate") {
                rest = &rest[1..];
            } else {
                full = module.clone();
                while let Some(first) = rest.first() {
                    match first.as_str() {
                        "super" => {
                            full.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            full.extend(rest.iter().cloned());
            // The deepest module the path names.
            let Some(target) = (0..=full.len())
                .rev()
                .map(|k| full[..k].to_vec())
                .find(|m| mods.contains_key(m))
            else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // an ancestor or a descendant
            }
            edges.insert((module[..=common].join("::"), target[..=common].join("::")));
        }
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
        graph.entry(b).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut State<'a>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &g[v] {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, &graph, &mut s);
        }
    }
    s.found
}

#[test]
fn the_module_graph_has_no_cycle() {
    let edges = edges(&repo().join("src"));
    // The stages and, inside each, its modules.
    for (a, b) in edges.iter().filter(|(a, _)| a.matches("::").count() <= 1) {
        println!("{a} -> {b}");
    }
    // The check sees the crate's real imports: the pipeline's first stages are there.
    for (a, b) in [
        ("ingest::flow", "ingest::decode"),
        ("ingest::http", "ingest::flow"),
        ("analysis", "tables"),
        ("tables", "ingest"),
    ] {
        assert!(
            edges.contains(&(a.into(), b.into())),
            "no {a} -> {b}: {edges:?}"
        );
    }
    let found = cycles(&edges);
    assert!(found.is_empty(), "import cycles: {found:?}");
}

/// The check finds a cycle where there is one: two sibling modules naming each other
/// through `use` lines, a brace group and a path in code.
#[test]
fn a_cycle_between_siblings_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod x;\nmod y;\nuse self::x::X;\n// use crate::b::Nothing;\n",
    )
    .unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::{y::Y, super::b};\n").unwrap();
    std::fs::write(src.join("a/y.rs"), "fn f() { super::x::g() }\n").unwrap();
    std::fs::write(src.join("b.rs"), "fn f() -> crate::a::A { todo!() }\n").unwrap();
    let edges = edges(src);
    assert!(edges.contains(&("a::x".into(), "a::y".into())), "{edges:?}");
    assert!(edges.contains(&("a::y".into(), "a::x".into())), "{edges:?}");
    assert!(edges.contains(&("a".into(), "b".into())), "{edges:?}");
    assert!(edges.contains(&("b".into(), "a".into())), "{edges:?}");
    let mut found = cycles(&edges);
    found.sort();
    assert_eq!(
        found,
        vec![
            vec!["a".to_owned(), "b".to_owned()],
            vec!["a::x".to_owned(), "a::y".to_owned()]
        ]
    );
}
