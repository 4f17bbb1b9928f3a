//! The README's `ptwalk` examples, run as written on the committed samples:
//! each `$ target/release/ptwalk ...` line of its `console` blocks must print
//! exactly the lines that follow it. The translations shown there are those
//! `scripts/make-samples.py` prints from the tables it wrote.

use std::process::Command;

/// (arguments, expected stdout) of every `ptwalk` command in the README.
fn examples() -> Vec<(Vec<String>, String)> {
    let readme = include_str!("../README.md");
    let mut examples: Vec<(Vec<String>, String)> = Vec::new();
    let mut in_console = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            if let Some(args) = command.strip_prefix("target/release/ptwalk ") {
                examples.push((
                    args.split_whitespace().map(str::to_owned).collect(),
                    String::new(),
                ));
            }
        } else if let Some((_, output)) = examples.last_mut() {
            output.push_str(line);
            output.push('\n');
        }
    }
    examples
}

#[test]
fn the_readme_ptwalk_examples_print_what_the_readme_shows() {
    let examples = examples();
    assert!(examples.len() >= 2, "the README shows ptwalk examples");
    for (args, expected) in examples {
        let output = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("ptwalk runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "ptwalk {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout, expected, "ptwalk {}", args.join(" "));
    }
}
