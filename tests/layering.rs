//! The house rules of `src/`, read from its `use` paths: no import cycles between modules
//! that share a parent (at every depth), and along the request path no module imports one
//! that stands above it. A new arrow that runs back up fails here, naming the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The request path, from where a request enters to where the bytes are.
const PATH: [&str; 6] = [
    "listener",
    "dispatch",
    "artifacts",
    "upstream",
    "archive",
    "storage",
];

/// A module path such as `["archive", "index", "records"]`.
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The file's code without comments and without its inline `#[cfg(test)]` tests.
fn code_of(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    match code.find("#[cfg(test)]\nmod tests {") {
        Some(at) => code[..at].to_owned(),
        None => code,
    }
}

/// The child modules a file declares under `#[cfg(test)]`: test code, not the house.
fn test_children(module: &Module, code: &str) -> Vec<Module> {
    let mut children = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        rest = &rest[at + "#[cfg(test)]".len()..];
        let next = rest.trim_start();
        if let Some(decl) = next.strip_prefix("mod ") {
            let name = &decl[..ident_end(decl)];
            if decl[name.len()..].trim_start().starts_with(';') {
                let mut child = module.clone();
                child.push(name.to_owned());
                children.push(child);
            }
        }
    }
    children
}

fn ident_end(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len())
}

/// Every path the code names through `crate::` or `super::`, made absolute.
fn named_paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().last();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = ident_end(rest);
            let head: Vec<String> = rest[..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let mut full = base.clone();
            full.extend(head.iter().cloned());
            if rest[end..].starts_with('{') {
                // `crate::a::{b::c, d}`: each item's first segment after the prefix.
                let group = &rest[end + 1..];
                let close = group.find('}').unwrap_or(group.len());
                for item in group[..close].split(',') {
                    let item = item.trim();
                    let first = &item[..ident_end(item)];
                    let mut path = full.clone();
                    path.extend(
                        first
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                    found.push(path);
                }
            } else {
                found.push(full);
            }
        }
    }
    found
}

struct Tree {
    modules: BTreeSet<Module>,
    /// File module → modules it names (the longest known prefix of each path).
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

fn read_tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let code: BTreeMap<Module, String> = files
        .iter()
        .map(|f| {
            (
                module_of(&src, f),
                code_of(&std::fs::read_to_string(f).unwrap()),
            )
        })
        .collect();
    let tests: BTreeSet<Module> = code
        .iter()
        .flat_map(|(module, code)| test_children(module, code))
        .collect();
    let mut edges = BTreeMap::new();
    for (module, code) in &code {
        if tests.iter().any(|t| module.starts_with(t)) {
            continue;
        }
        let mut named = BTreeSet::new();
        for path in named_paths(code, module) {
            let known = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains(prefix));
            if let Some(target) = known.filter(|t| t != module) {
                named.insert(target);
            }
        }
        edges.insert(module.clone(), named);
    }
    Tree { modules, edges }
}

/// The arrows between the children of `parent` (each file counted at its child's level).
fn sibling_arrows(tree: &Tree, parent: &Module) -> BTreeMap<String, BTreeSet<String>> {
    let child = |m: &Module| -> Option<String> {
        (m.len() > parent.len() && m[..parent.len()] == parent[..]).then(|| m[parent.len()].clone())
    };
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &tree.edges {
        let Some(a) = child(from) else { continue };
        for target in targets {
            if let Some(b) = child(target).filter(|b| *b != a) {
                arrows.entry(a.clone()).or_default().insert(b);
            }
        }
    }
    arrows
}

fn find_cycle(arrows: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        arrows: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in arrows.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, arrows, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    arrows
        .keys()
        .find_map(|node| visit(node, arrows, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_cycles_between_sibling_modules() {
    let tree = read_tree();
    assert!(tree.modules.len() > 40, "src/ was not read");
    let parents: BTreeSet<Module> = tree
        .modules
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    for parent in parents {
        let arrows = sibling_arrows(&tree, &parent);
        if let Some(cycle) = find_cycle(&arrows) {
            panic!(
                "import cycle under `{}`: {}",
                parent.join("::"),
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn along_the_request_path_no_module_imports_one_above_it() {
    let tree = read_tree();
    let arrows = sibling_arrows(&tree, &Vec::new());
    for (i, upper) in PATH.iter().enumerate() {
        for lower in &PATH[i + 1..] {
            let back = arrows.get(*lower).is_some_and(|t| t.contains(*upper));
            assert!(
                !back,
                "`{lower}` imports `{upper}`, which stands above it on the path"
            );
        }
    }
    // The walk itself sees the arrows that must be there.
    assert!(arrows["dispatch"].contains("artifacts"));
    assert!(arrows["artifacts"].contains("upstream"));
    assert!(arrows["archive"].contains("storage"));
}

#[test]
fn the_checks_see_a_cycle_when_there_is_one() {
    let mut arrows = BTreeMap::new();
    arrows.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    arrows.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        find_cycle(&arrows),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    let code = "use crate::{archive::cache::Archive, storage};\nuse super::table::Record;";
    let module = vec![
        "archive".to_owned(),
        "index".to_owned(),
        "records".to_owned(),
    ];
    let named = named_paths(code, &module);
    assert!(named.contains(&vec!["archive".into(), "cache".into(), "Archive".into()]));
    assert!(named.contains(&vec!["storage".into()]));
    assert!(named.contains(&vec![
        "archive".into(),
        "index".into(),
        "table".into(),
        "Record".into()
    ]));
}
