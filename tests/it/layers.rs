//! The layer order written in ARCHITECTURE.md holds in the code: every `crate::` and
//! `super::` path of a module in `src/` names a module of its own layer or one below,
//! and no modules import each other in a circle. The table is the fenced `layers`
//! block of ARCHITECTURE.md, the top layer first, one layer a line; a module named
//! there stands for its file and every file below it that is not named itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A layer table: module path → (layer, counted from the bottom at 0).
struct Layers {
    of: BTreeMap<String, usize>,
}

impl Layers {
    fn parse(architecture: &str) -> Layers {
        let block = architecture
            .split("```layers\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("ARCHITECTURE.md has a ```layers block");
        let lines: Vec<String> = block
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let mut of = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            let layer = lines.len() - 1 - i;
            for module in line.split_whitespace() {
                assert!(
                    of.insert(module.to_string(), layer).is_none(),
                    "{module} is named twice in the layers block"
                );
            }
        }
        Layers { of }
    }

    /// The entry that stands for `path` (a module path, `a::b::c`): the longest
    /// named prefix.
    fn unit(&self, path: &[String]) -> Option<&str> {
        (1..=path.len()).rev().find_map(|n| {
            self.of
                .get_key_value(&path[..n].join("::"))
                .map(|(k, _)| k.as_str())
        })
    }
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments, string and character literals and its
/// `#[cfg(test)] mod tests { … }` (what tests import is not the module's).
fn code_of(text: &str) -> String {
    without_test_module(&strip(text))
}

/// `code` less its `#[cfg(test)] mod tests { … }`, wherever it stands.
fn without_test_module(code: &str) -> String {
    let Some(at) = code.find("#[cfg(test)]") else {
        return code.to_string();
    };
    let rest = &code[at + "#[cfg(test)]".len()..];
    let Some(open) = rest.trim_start().strip_prefix("mod tests") else {
        return code.to_string();
    };
    let Some(body) = open.trim_start().strip_prefix('{') else {
        // `mod tests;`: a file of its own, never read.
        return code.to_string();
    };
    let mut depth = 1;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return format!("{}{}", &code[..at], &body[i + 1..]);
        }
    }
    code[..at].to_string()
}

/// `text` without comments, string and character literals.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // A raw string: r"…", r#"…"#, …
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A character literal ('a', '€', '\n', '\u{1F600}') or a lifetime ('a).
                let rest = &text[i + 1..];
                let len = match rest.chars().next() {
                    Some('\\') => rest.get(2..).and_then(|r| r.find('\'')).map(|n| n + 3),
                    Some(c) if rest[c.len_utf8()..].starts_with('\'') => Some(c.len_utf8() + 1),
                    _ => None,
                };
                match len {
                    Some(n) => i += 1 + n,
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            _ => {
                let c = text[i..].chars().next().expect("a char");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// Every path a use tree or an expression names after `crate::` or `super::`, each as
/// its segments from the crate root.
fn paths_in(code: &str, module: &[String], is_mod_rs: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let tokens = tokenize(code);
    let mut i = 0;
    while i < tokens.len() {
        let start = &tokens[i];
        let prev = i.checked_sub(1).map(|p| tokens[p].as_str());
        // `super::` or `crate::` starting a path (not the tail of `a::super`).
        let base: Option<Vec<String>> = match start.as_str() {
            "crate" if prev != Some("::") => Some(Vec::new()),
            "super" if prev != Some("::") => {
                // The parent of a file module; a mod.rs is its folder's module.
                let mut m = module.to_vec();
                if !is_mod_rs || !m.is_empty() {
                    m.pop();
                }
                Some(m)
            }
            _ => None,
        };
        let Some(mut base) = base else {
            i += 1;
            continue;
        };
        i += 1;
        // Further `super::super::`.
        while tokens.get(i).map(String::as_str) == Some("::")
            && tokens.get(i + 1).map(String::as_str) == Some("super")
        {
            base.pop();
            i += 2;
        }
        let (trees, next) = use_tree(&tokens, i, base);
        out.extend(trees);
        i = next.max(i + 1);
    }
    out
}

/// Reads `::a::b::{c, d::e}` at `tokens[i..]` below `prefix`.
fn use_tree(tokens: &[String], mut i: usize, mut prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut out = Vec::new();
    while tokens.get(i).map(String::as_str) == Some("::") {
        match tokens.get(i + 1).map(String::as_str) {
            Some("{") => {
                i += 2;
                loop {
                    match tokens.get(i).map(String::as_str) {
                        Some("}") => {
                            i += 1;
                            break;
                        }
                        Some(",") => i += 1,
                        Some("self") => {
                            out.push(prefix.clone());
                            i += 1;
                        }
                        Some(t) if is_ident(t) => {
                            let mut p = prefix.clone();
                            p.push(t.to_string());
                            let (mut inner, next) = use_tree(tokens, i + 1, p.clone());
                            if inner.is_empty() {
                                inner.push(p);
                            }
                            out.extend(inner);
                            i = next;
                        }
                        Some(_) => i += 1,
                        None => break,
                    }
                }
                return (out, i);
            }
            Some(t) if is_ident(t) => {
                prefix.push(t.to_string());
                i += 2;
            }
            _ => break,
        }
    }
    out.push(prefix);
    (out, i)
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn tokenize(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = at + c.len_utf8();
            while let Some(&(n, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = n + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(code[at..end].to_string());
        } else if c == ':' && chars.peek().map(|&(_, d)| d) == Some(':') {
            chars.next();
            out.push("::".into());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// What each named module of `src/` imports from the others: unit → unit → the
/// files and paths that make the arrow.
type Arrows = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn arrows(src: &Path, layers: &Layers) -> (Arrows, Vec<String>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut arrows = Arrows::new();
    let mut unplaced = Vec::new();
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // The crate roots declare modules; `tests.rs` files are test modules.
        if file.parent() == Some(src) && (name == "lib.rs" || name == "main.rs")
            || name == "tests.rs"
        {
            continue;
        }
        let module = module_of(src, &file);
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let code = code_of(&text);
        let Some(from) = layers.unit(&module) else {
            // A folder's mod.rs that only declares its files needs no layer.
            if name != "mod.rs" || !declares_only(&code) {
                unplaced.push(module.join("::"));
            }
            continue;
        };
        for path in paths_in(&code, &module, name == "mod.rs") {
            let Some(to) = layers.unit(&path) else {
                continue;
            };
            if to != from {
                arrows
                    .entry(from.to_string())
                    .or_default()
                    .entry(to.to_string())
                    .or_default()
                    .insert(format!(
                        "{} (crate::{})",
                        file.strip_prefix(src).unwrap_or(&file).display(),
                        path.join("::")
                    ));
            }
        }
    }
    (arrows, unplaced)
}

/// Whether `code` is nothing but `mod` declarations (`pub mod a;`, `mod b;`).
fn declares_only(code: &str) -> bool {
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|s| {
            let words: Vec<&str> = s.split_whitespace().collect();
            matches!(words.as_slice(), ["mod", name] | ["pub", "mod", name] if is_ident(name))
        })
}

/// A circle of units, if there is one.
fn circle(arrows: &Arrows) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        arrows: &Arrows,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut c = path[i..].to_vec();
            c.push(at.to_string());
            return Some(c);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_string());
        for to in arrows.get(at).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(to, arrows, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.to_string());
        None
    }
    let mut done = BTreeSet::new();
    arrows
        .keys()
        .find_map(|from| visit(from, arrows, &mut Vec::new(), &mut done))
}

fn problems(src: &Path, architecture: &str) -> Vec<String> {
    let layers = Layers::parse(architecture);
    let (arrows, unplaced) = arrows(src, &layers);
    let mut out: Vec<String> = unplaced
        .into_iter()
        .map(|m| format!("src module {m} is in no layer of ARCHITECTURE.md"))
        .collect();
    for named in layers.of.keys() {
        let segments: Vec<&str> = named.split("::").collect();
        let file = src.join(segments.join("/"));
        if !file.with_extension("rs").is_file() && !file.join("mod.rs").is_file() {
            out.push(format!(
                "the layers block names {named}, which is no module of src/"
            ));
        }
    }
    for (from, tos) in &arrows {
        for (to, why) in tos {
            if layers.of[to] > layers.of[from] {
                out.push(format!(
                    "{from} (layer {}) imports {to} (layer {}), above it: {}",
                    layers.of[from],
                    layers.of[to],
                    why.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if let Some(c) = circle(&arrows) {
        out.push(format!(
            "modules import each other in a circle: {}",
            c.join(" -> ")
        ));
    }
    out
}

#[test]
fn no_module_imports_from_a_layer_above_its_own_and_none_import_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let problems = problems(&root.join("src"), &architecture);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: an upward import, a circle, a module in no layer and a layer
/// entry that names nothing are each found, in a scratch tree.
#[test]
fn the_layer_check_finds_an_upward_import_a_circle_and_a_module_outside_the_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod low;\npub mod high;\npub mod side;\n");
    // A folder that only declares its files needs no layer of its own.
    write("low/mod.rs", "//! Low things.\npub mod a;\npub mod b;\n");
    // Comments and strings never count; a test module does not either.
    write(
        "low/a.rs",
        "//! see crate::high\nconst S: &str = \"crate::high::X\";\n\
         use super::b::B;\n#[cfg(test)]\nmod tests {\n    use crate::high::H;\n    fn f() { if true { g(\"}\") } }\n}\n",
    );
    write("low/b.rs", "pub struct B;\n");
    write("high.rs", "use crate::low::{a, b::B};\n");
    write("side.rs", "pub fn f() {}\n");
    let table = "```layers\nhigh\nlow::a low::b side\n```\n";
    assert_eq!(problems(&src, table), Vec::<String>::new());

    // An upward import, written inline in an expression after the test module.
    write(
        "low/b.rs",
        "pub struct B;\n#[cfg(test)]\nmod tests {}\nfn f() { crate::high::g() }\n",
    );
    let found = problems(&src, table);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("low::b (layer 0) imports high (layer 1), above it: low/b.rs"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("modules import each other in a circle: "),
        "{found:?}"
    );

    // A circle within one layer, through a use tree.
    write("low/b.rs", "pub struct B;\nuse crate::{side::f};\n");
    write("side.rs", "use super::low::a;\n");
    let found = problems(&src, table);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("low::b -> side -> low::a"), "{found:?}");

    // A module in no layer (a folder's mod.rs with code of its own too), and a
    // named module that does not exist.
    write("low/b.rs", "pub struct B;\n");
    write("side.rs", "pub fn f() {}\n");
    write("extra.rs", "");
    write("low/mod.rs", "pub mod a;\npub mod b;\npub use a::A;\n");
    let found = problems(&src, "```layers\nhigh gone\nlow::a low::b side\n```\n");
    assert_eq!(
        found,
        [
            "src module extra is in no layer of ARCHITECTURE.md",
            "src module low is in no layer of ARCHITECTURE.md",
            "the layers block names gone, which is no module of src/"
        ]
    );
}
