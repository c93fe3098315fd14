//! The README and `docs/` say what is true: every relative link names a file (and a heading) that
//! exists, every repository path they name exists, the README's minimal configuration is one the
//! relay accepts, every `shoprelay ...` command they quote is one the binary knows, the README
//! starts with running the relay, and no page points outside the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/, as (path relative to the root, text).
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root()).expect("under root").to_path_buf())
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root().join(&p)).expect("read page");
            (p, text)
        })
        .collect()
}

/// The fenced code blocks of a page: (info string, body).
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match (&mut open, trimmed.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The page's text outside code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// The targets of `[text](target)` links in the prose.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_names_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let dir = page.parent().unwrap_or(Path::new(""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            let full = root().join(&path);
            if !full.exists() {
                broken.push(format!(
                    "{}: `{target}`: no file {}",
                    page.display(),
                    path.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment {
                let text = std::fs::read_to_string(&full).expect("read link target");
                if !anchors(&text).iter().any(|a| a == fragment) {
                    broken.push(format!(
                        "{}: `{target}`: no heading #{fragment} in {}",
                        page.display(),
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found; is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_minimal_configuration_is_accepted() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let (_, first_toml) = code_blocks(&readme)
        .into_iter()
        .find(|(info, _)| info == "toml")
        .expect("README.md shows a configuration");
    let settings = shoprelay::config::Settings::from_toml(&first_toml, &[])
        .unwrap_or_else(|e| panic!("README's configuration is refused: {e}"));
    assert_eq!(settings.channels.len(), 1);
    assert!(settings.server.admin_token.is_some());
    assert!(
        settings.server.public_url.is_some(),
        "erpnext setup needs it"
    );
}

#[test]
fn every_toml_block_in_the_docs_is_toml() {
    for (page, text) in pages() {
        for (info, body) in code_blocks(&text) {
            if info == "toml" {
                if let Err(e) = body.parse::<toml::Table>() {
                    panic!(
                        "{}: a toml block does not parse: {e}\n{body}",
                        page.display()
                    );
                }
            }
        }
    }
}

#[test]
fn the_readme_runs_the_relay_on_its_first_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let line = readme
        .lines()
        .position(|l| l.contains("shoprelay serve --config"))
        .expect("README.md shows `shoprelay serve --config`");
    assert!(
        line < 70,
        "`shoprelay serve` first appears at line {}",
        line + 1
    );
    for command in [
        "cargo run --release -- demo",
        "cargo test",
        "shoprelay erpnext setup",
    ] {
        assert!(readme.contains(command), "README.md lacks `{command}`");
    }
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
}

#[test]
fn no_page_points_outside_the_repository() {
    for (page, text) in pages() {
        assert!(
            !text.contains("../shared"),
            "{} points outside the repository",
            page.display()
        );
    }
}

/// The subcommand words of a quoted `shoprelay ...` command: up to the first flag, placeholder
/// or shell punctuation.
fn subcommand(line: &str) -> Option<Vec<String>> {
    // What the relay prints, quoted as such, is not a command.
    if line.starts_with("shoprelay listening on") {
        return None;
    }
    let rest = line.trim().strip_prefix("shoprelay ")?;
    let words: Vec<String> = rest
        .split_whitespace()
        .take_while(|w| {
            w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
        })
        .map(str::to_owned)
        .collect();
    (!words.is_empty()).then_some(words)
}

#[test]
fn every_quoted_shoprelay_command_is_one_the_binary_knows() {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for (_, text) in pages() {
        // Commands in code blocks, one a line, and in inline code spans.
        for (_, body) in code_blocks(&text) {
            commands.extend(body.lines().filter_map(subcommand));
        }
        for span in prose(&text).split('`').skip(1).step_by(2) {
            commands.extend(subcommand(span));
        }
    }
    commands.sort();
    commands.dedup();
    assert!(commands.len() >= 8, "only {commands:?} found");
    for words in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_shoprelay"))
            .args(&words)
            .arg("--help")
            .output()
            .expect("run shoprelay");
        assert!(
            out.status.success(),
            "`shoprelay {} --help` failed: {}",
            words.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    const TOP: [&str; 8] = [
        "src/",
        "tests/",
        "docs/",
        "deploy/",
        "benches/",
        ".ci/",
        "shop_adapter_spec/",
        "erpnext_webhook_setup/",
    ];
    let mut missing = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        for span in prose(&text).split('`').skip(1).step_by(2) {
            let is_path = TOP.iter().any(|t| span.starts_with(t))
                && !span.contains(|c: char| c.is_whitespace() || "*{<[".contains(c));
            if !is_path {
                continue;
            }
            checked += 1;
            if !root().join(span).exists() {
                missing.push(format!("{}: `{span}`", page.display()));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} paths found; is the parser right?"
    );
    assert!(
        missing.is_empty(),
        "the docs name paths that do not exist (moved? fix the docs):\n{}",
        missing.join("\n")
    );
}
