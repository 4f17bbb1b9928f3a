//! The `ptwalk` examples of the README and docs/walker.md, run as written on
//! the committed samples: each `$ target/release/ptwalk ...` line of their
//! `console` blocks must print exactly the lines that follow it, and exit 0
//! (or the status `exit=N` after `console` names). The translations shown
//! there are those `scripts/make-samples.py` prints from the tables it
//! wrote. docs/walker.md's `--json` examples also stand for the schema it
//! documents: each line parses, has its keys, and together they show every
//! error kind of its table, on the architectures the table names.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// One command of a `console` block.
struct Example {
    args: Vec<String>,
    stdout: String,
    exit: i32,
}

/// Every `ptwalk` command of `doc`'s `console` blocks.
fn examples(doc: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut block_exit = None;
    for line in doc.lines() {
        if let Some(info) = line.strip_prefix("```") {
            block_exit = match info.strip_prefix("console") {
                Some("") => Some(0),
                Some(rest) => rest.trim().strip_prefix("exit=").map(|code| {
                    code.parse()
                        .unwrap_or_else(|_| panic!("a console block's exit status: {line}"))
                }),
                None => None,
            };
            continue;
        }
        let Some(exit) = block_exit else {
            continue;
        };
        if let Some(command) = line.strip_prefix("$ ") {
            if let Some(args) = command.strip_prefix("target/release/ptwalk ") {
                examples.push(Example {
                    args: args.split_whitespace().map(str::to_owned).collect(),
                    stdout: String::new(),
                    exit,
                });
            }
        } else if let Some(example) = examples.last_mut() {
            example.stdout.push_str(line);
            example.stdout.push('\n');
        }
    }
    examples
}

/// Runs each example from the repository's root, as the docs show them.
fn check(examples: &[Example]) {
    for example in examples {
        let output = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
            .args(&example.args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("ptwalk runs");
        let shown = example.args.join(" ");
        assert_eq!(
            output.status.code(),
            Some(example.exit),
            "ptwalk {shown}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            example.stdout,
            "ptwalk {shown}"
        );
    }
}

const README: &str = include_str!("../README.md");
const WALKER_DOC: &str = include_str!("../docs/walker.md");

#[test]
fn the_readme_ptwalk_examples_print_what_the_readme_shows() {
    let examples = examples(README);
    assert!(examples.len() >= 2, "the README shows ptwalk examples");
    check(&examples);
}

#[test]
fn the_walker_doc_ptwalk_examples_print_what_it_shows() {
    let examples = examples(WALKER_DOC);
    assert!(
        examples.len() >= 8,
        "docs/walker.md shows an example of each --json case"
    );
    check(&examples);
}

/// The rows of the markdown table whose header row starts with `header`:
/// each row's cells, trimmed.
fn table_rows(doc: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = doc.lines().skip_while(|line| !line.starts_with(header));
    assert!(
        lines.next().is_some(),
        "docs/walker.md has a table {header}"
    );
    lines
        .skip(1) // | --- |
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// `` `name` `` -> `name`.
fn unquoted(cell: &str) -> &str {
    cell.trim_matches('`')
}

#[test]
fn the_walker_doc_json_examples_show_the_documented_schema_and_every_case() {
    let keys: Vec<String> = table_rows(WALKER_DOC, "| Key | Value |")
        .iter()
        .map(|row| unquoted(&row[0]).to_owned())
        .collect();
    assert_eq!(
        keys,
        ["va", "arch", "pa", "page_size", "mapping", "path", "error"]
    );
    // kind -> which architectures the table says it happens on.
    let kinds: Vec<(String, bool, bool)> = table_rows(WALKER_DOC, "| `kind` |")
        .iter()
        .map(|row| {
            (
                unquoted(&row[0]).to_owned(),
                !row[1].is_empty(),
                !row[2].is_empty(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 7, "{kinds:?}");

    let mut seen = BTreeSet::new();
    for example in examples(WALKER_DOC) {
        for line in example.stdout.lines().filter(|line| line.starts_with('{')) {
            let object: Value = serde_json::from_str(line).expect(line);
            let found: Vec<&String> = object.as_object().expect(line).keys().collect();
            let mut documented: Vec<&String> = keys.iter().collect();
            documented.sort();
            assert_eq!(found, documented, "{line}");
            let arch = object["arch"].as_str().expect(line).to_owned();
            let case = match &object["error"] {
                Value::Null => format!("{} page", object["page_size"].as_str().expect(line)),
                error => {
                    let kind = error["kind"].as_str().expect(line);
                    assert!(
                        kinds.iter().any(|(documented, _, _)| documented == kind),
                        "{kind} is in the table: {line}"
                    );
                    kind.to_owned()
                }
            };
            seen.insert((arch, case));
        }
    }
    for arch in ["x86_64", "aarch64"] {
        for page in ["4K page", "2M page"] {
            assert!(
                seen.contains(&(arch.to_owned(), page.to_owned())),
                "an example of a {page} on {arch}: {seen:?}"
            );
        }
    }
    for (kind, x86, arm) in &kinds {
        // A row names the case on each architecture it happens on.
        for (arch, happens) in [("x86_64", x86), ("aarch64", arm)] {
            if *happens {
                assert!(
                    seen.contains(&(arch.to_owned(), kind.clone())),
                    "an example of {kind} on {arch}: {seen:?}"
                );
            }
        }
    }
}
