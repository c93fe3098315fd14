//! The module graph has no cycles: every `crate::`, `super::`, `self::` and child-module path in
//! `src/**/*.rs` (the library; `main.rs` is the binary) is an edge from the file's module to the
//! module it names (a module naming its own submodules, as a parent declaring and re-exporting
//! them does, is structure and not an edge), and neither the graph of modules nor the graph of
//! top-level modules may hold a circle. A new import that closes a circle fails here, naming it.
//! The binary's own files (`src/main.rs` and the modules it declares, such as the demo) are not
//! the library; no module of the library may use the tools (the `shoprelay_testkit` crate), the
//! demo or the staging test (only `cli` and the binary start it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;
/// A module's name and its code without comments and strings.
type Source = (String, String);

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`, `src/lib.rs` -> `` (the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "lib" if parts.is_empty() => {}
        "main" if parts.is_empty() => return None,
        "mod" => {}
        other => parts.push(other.to_owned()),
    }
    Some(parts.join("::"))
}

/// The source without comments and string literals (a URL in a string is not a path).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r' && b.get(i + 1) == Some(&b'#') && b.get(i + 2) == Some(&b'"') {
            i += 3;
            while i + 1 < b.len() && !(b[i] == b'"' && b[i + 1] == b'#') {
                i += 1;
            }
            i += 2;
            out.push_str("\"\"");
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree or path starting at `s` (just after `prefix::`) into segment lists.
fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let s_trim = s.trim_start();
    let mut pos = s.len() - s_trim.len();
    let bytes = s.as_bytes();
    if bytes.get(pos) == Some(&b'{') {
        pos += 1;
        loop {
            while pos < bytes.len() && (bytes[pos] as char).is_whitespace() {
                pos += 1;
            }
            match bytes.get(pos) {
                Some(b'}') => return pos + 1,
                Some(b',') => pos += 1,
                None => return pos,
                _ => pos += expand(&s[pos..], prefix.clone(), out),
            }
        }
    }
    let start = pos;
    while pos < bytes.len() && is_ident(bytes[pos] as char) {
        pos += 1;
    }
    if pos == start {
        out.push(prefix);
        return pos.max(1);
    }
    let mut path = prefix;
    path.push(s[start..pos].to_owned());
    if s[pos..].starts_with("::") {
        pos += 2;
        pos + expand(&s[pos..], path, out)
    } else {
        out.push(path);
        pos
    }
}

/// Every module path named in `code`, resolved against `module` and the known modules.
fn edges_of(
    module: &str,
    code: &str,
    children: &BTreeSet<String>,
    modules: &BTreeSet<String>,
) -> BTreeSet<String> {
    let file_mod: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    // Inline modules (`mod tests { ... }`) open at a brace depth; `super` inside them is
    // relative to them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if code[i..].starts_with("mod ") && (i == 0 || !is_ident(b[i - 1] as char)) {
            let rest = &code[i + 4..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| is_ident(*c))
                .collect();
            let after = rest.trim_start()[name.len()..].trim_start();
            if !name.is_empty() && after.starts_with('{') {
                inline.push((name, depth + 1));
            }
        }
        let own: Vec<String> = file_mod
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let boundary = i == 0 || !(is_ident(b[i - 1] as char) || b[i - 1] == b':');
        if !boundary || !is_ident(b[i] as char) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident(b[i] as char) {
            i += 1;
        }
        let word = &code[start..i];
        if !code[i..].starts_with("::") {
            continue;
        }
        let mut base: Vec<String> = match word {
            "crate" => Vec::new(),
            "self" => own.clone(),
            "super" => own[..own.len().saturating_sub(1)].to_vec(),
            w if children.contains(w) => own.clone(),
            _ => continue,
        };
        let mut rest = i + 2;
        if word == "super" {
            while code[rest..].starts_with("super::") {
                base.pop();
                rest += "super::".len();
            }
        }
        let tail = if children.contains(word) && !matches!(word, "crate" | "self" | "super") {
            format!("{word}::{}", &code[rest..])
        } else {
            code[rest..].to_owned()
        };
        let mut paths = Vec::new();
        expand(&tail, base.clone(), &mut paths);
        if word == "super" || word == "self" || word == "crate" {
            // `use super::*` and the like name the base module itself.
            if paths.is_empty() {
                paths.push(base);
            }
        }
        for p in paths {
            // The longest prefix that is a module is the target.
            let target = (1..=p.len())
                .rev()
                .map(|n| p[..n].join("::"))
                .find(|m| modules.contains(m));
            // A module's use of itself or of its own submodules (declarations, re-exports) is
            // structure, not an edge of the data flow.
            let inside = |t: &String| {
                t == module || (module.is_empty() || t.starts_with(&format!("{module}::")))
            };
            if let Some(t) = target.filter(|t| !inside(t)) {
                found.insert(t);
            }
        }
        i = rest;
    }
    found
}

/// The modules the binary declares (`mod NAME;` in `src/main.rs`): `src/NAME.rs` and
/// `src/NAME/**` are the binary's, not the library's.
fn binary_modules(src: &Path) -> BTreeSet<String> {
    let main = std::fs::read_to_string(src.join("main.rs")).expect("read src/main.rs");
    code_only(&main)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// (module, code without comments and strings) of every file of `src/`, the library's first and
/// then the binary's (its own modules, named as the library would name them).
fn sources() -> (Vec<Source>, Vec<Source>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let binary = binary_modules(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut library = Vec::new();
    let mut bin = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read a source file");
        let Some(m) = module_of(&src, f) else {
            bin.push(("main".to_owned(), code_only(&text)));
            continue;
        };
        let top = m.split("::").next().unwrap_or_default();
        if binary.contains(top) {
            bin.push((m, code_only(&text)));
        } else {
            library.push((m, code_only(&text)));
        }
    }
    (library, bin)
}

fn module_graph() -> Graph {
    let mods = sources().0;
    let modules: BTreeSet<String> = mods.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = Graph::new();
    for (m, code) in &mods {
        let children: BTreeSet<String> = modules
            .iter()
            .filter_map(|c| {
                let rest = if m.is_empty() {
                    Some(c.as_str())
                } else {
                    c.strip_prefix(m.as_str())?.strip_prefix("::")
                };
                rest.filter(|r| !r.is_empty() && !r.contains("::"))
                    .map(str::to_owned)
            })
            .collect();
        graph.insert(m.clone(), edges_of(m, code, &children, &modules));
    }
    graph
}

/// The graph of top-level modules: `a::b -> c::d` becomes `a -> c` (edges inside `a` dropped).
fn top_level(graph: &Graph) -> Graph {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut out = Graph::new();
    for (from, tos) in graph {
        if from.is_empty() {
            continue;
        }
        let entry = out.entry(top(from)).or_default();
        for to in tos {
            if !to.is_empty() && top(to) != top(from) {
                entry.insert(top(to));
            }
        }
    }
    out
}

/// Every strongly connected component with more than one module (Tarjan), each as a circle.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn describe(graph: &Graph, cycles: &[Vec<String>]) -> String {
    let mut text = String::new();
    for c in cycles {
        let members: BTreeSet<&String> = c.iter().collect();
        text.push_str(&format!("circle among {}:\n", c.join(", ")));
        for m in c {
            for to in graph.get(m).into_iter().flatten() {
                if members.contains(to) {
                    text.push_str(&format!("  {m} uses {to}\n"));
                }
            }
        }
    }
    text
}

#[test]
fn no_module_uses_a_module_that_uses_it_back() {
    let graph = module_graph();
    // The reader sees the imports it must see, so an empty graph cannot pass by accident.
    for (from, to) in [
        ("processor", "store"),
        ("inbound::erpnext", "state"),
        ("admin::api", "channels"),
        ("shop::agent", "metrics"),
        ("erpnext::reconcile", "erpnext::client"),
        ("shop::client", "signing"),
    ] {
        assert!(
            graph.get(from).is_some_and(|t| t.contains(to)),
            "{from} should use {to}; the graph reader is broken: {graph:#?}"
        );
    }
    let found = cycles(&graph);
    assert!(found.is_empty(), "{}", describe(&graph, &found));
    let top = top_level(&graph);
    let found = cycles(&top);
    assert!(found.is_empty(), "{}", describe(&top, &found));
}

#[test]
fn a_circle_is_found_and_named() {
    let code = code_only(
        "use crate::{a::{X, y::Z}, b};\n// use crate::c;\nlet s = \"crate::d\";\nsuper::e::f();\nmod tests {\n    use super::*;\n}\n",
    );
    let modules: BTreeSet<String> = ["a", "a::y", "b", "c", "d", "m", "m::n", "m::e"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let edges = edges_of("m::n", &code, &BTreeSet::new(), &modules);
    let want: BTreeSet<String> = ["a", "a::y", "b", "m::e"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(edges, want);
    let mut g = Graph::new();
    for (a, b) in [("x", "y"), ("y", "z"), ("z", "x"), ("z", "w")] {
        g.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
    let found = cycles(&g);
    assert_eq!(found, vec![vec!["x".to_owned(), "y".into(), "z".into()]]);
    assert!(describe(&g, &found).contains("z uses x"));
}

/// Every place in `code` where the word `sled` names the sled crate: as the root of a path
/// (`sled::`, `::sled`) or in `use sled` / `extern crate sled`. The backend's own module,
/// `store::sled`, reached as `self::sled`, `super::sled`, `store::sled` or declared as
/// `mod sled`, is allowed.
fn names_sled_crate(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("sled") {
        let i = from + pos;
        from = i + 4;
        let before_ok = i == 0 || !is_ident(b[i - 1] as char);
        let after_ok = b.get(i + 4).is_none_or(|c| !is_ident(*c as char));
        if !(before_ok && after_ok) {
            continue;
        }
        let head = code[..i].trim_end_matches([' ', '\t']);
        let the_module = [
            "self::",
            "super::",
            "store::",
            "mod",
            "pub(crate) mod",
            "pub mod",
        ]
        .iter()
        .any(|p| head.ends_with(p));
        if !the_module {
            found.push(code[..i].matches('\n').count() + 1);
        }
    }
    found
}

#[test]
fn only_the_sled_backend_names_sled() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let backend = src.join("store").join("sled");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.iter().any(|f| f.starts_with(&backend)),
        "src/store/sled/ holds the sled backend"
    );
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&backend)) {
        let text = std::fs::read_to_string(f).expect("read a source file");
        for line in names_sled_crate(&code_only(&text)) {
            offenders.push(format!("{}:{line}", f.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "only src/store/sled/ may touch sled; named in:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_sled_check_tells_the_crate_from_the_module() {
    let code = code_only(
        "mod sled;\nuse self::sled::SledStore;\n// sled::Db in a comment\nlet s = \"sled=warn\";\nlet t: sled::Tree;\nuse ::sled::Db;\nfn sledge() {}\n",
    );
    assert_eq!(names_sled_crate(&code), vec![5, 6]);
}

/// What the library must not use: the tools (the testkit crate `shoprelay_testkit`, or a module
/// of that name), the demo, and the staging test (which only the CLI starts: the binary and
/// `cli`). One line per offence.
fn fence_offences(library: &[Source], graph: &Graph) -> Vec<String> {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for (m, code) in library {
        let names_testkit = code
            .match_indices("shoprelay_testkit")
            .any(|(i, w)| !code[i + w.len()..].starts_with(|c: char| is_ident(c)));
        if names_testkit {
            out.push(format!("{m} uses the testkit crate (shoprelay_testkit)"));
        }
    }
    for (from, tos) in graph {
        for to in tos {
            let (f, t) = (top(from), top(to));
            let forbidden = match t.as_str() {
                "testkit" | "demo" => f != t,
                "staging" => f != t && f != "cli",
                _ => false,
            };
            if forbidden {
                out.push(format!("{from} uses {to}"));
            }
        }
    }
    out
}

#[test]
fn the_relay_uses_neither_the_tools_nor_the_demo_nor_the_staging_test() {
    let (library, binary) = sources();
    // The reader sees the binary's use of the testkit, so the check cannot pass by accident.
    assert!(
        binary
            .iter()
            .any(|(m, code)| m == "demo" && code.contains("shoprelay_testkit::")),
        "the demo (a module of the binary) should use shoprelay_testkit; the reader is broken"
    );
    assert!(
        library.iter().all(|(m, _)| m != "demo" && m != "main"),
        "the demo and main.rs are the binary's"
    );
    let graph = module_graph();
    let offences = fence_offences(&library, &graph);
    assert!(
        offences.is_empty(),
        "relay code must not use the tools, the demo or the staging test:\n{}",
        offences.join("\n")
    );
}

#[test]
fn an_import_of_the_tools_into_the_relay_is_named() {
    let library = vec![
        (
            "processor".to_owned(),
            code_only("use shoprelay_testkit::ShopMock;\n// shoprelay_testkit in a comment\n"),
        ),
        (
            "shop::agent".to_owned(),
            code_only("let s = \"shoprelay_testkit\";"),
        ),
    ];
    let mut graph = Graph::new();
    for (a, b) in [
        ("shop::agent", "staging"),
        ("cli", "staging::order"),
        ("staging::order", "model"),
        ("admin", "demo"),
    ] {
        graph.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
    assert_eq!(
        fence_offences(&library, &graph),
        vec![
            "processor uses the testkit crate (shoprelay_testkit)".to_owned(),
            "admin uses demo".into(),
            "shop::agent uses staging".into(),
        ]
    );
}
