//! The README's shell snippets run as written. Every ```` ```sh ```` block is run, each
//! section's (`## ` heading) blocks in order as one shell session, against the sandbox
//! and a database of the test's own, from a copy of the repository's `jobs/`,
//! `examples/jobs/` and `config/`; or the line above it says why it is not run
//! (`<!-- not run by tests/it/readme.rs: why -->`). What a test needs instead of what a
//! user types is swapped in, and only that ([`SWAPS`]).

use std::path::Path;

use crate::common::*;

/// One ```` ```sh ```` block of the README.
#[derive(Debug)]
struct Snippet {
    /// The `## ` heading it is under.
    section: String,
    /// Its first line's number in the README.
    line: usize,
    text: String,
    /// Why it is not run, when the line above it says.
    not_run: Option<String>,
}

const NOT_RUN: &str = "<!-- not run by tests/it/readme.rs:";

fn snippets(readme: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = readme.lines().enumerate().peekable();
    let mut above: Option<&str> = None;
    while let Some((i, line)) = lines.next() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading.to_string();
        }
        if line.trim_end() == "```sh" {
            let mut text = String::new();
            for (_, l) in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            let not_run = above
                .and_then(|a| a.trim().strip_prefix(NOT_RUN))
                .map(|why| why.trim_end_matches("-->").trim().to_string());
            out.push(Snippet {
                section: section.clone(),
                line: i + 1,
                text,
                not_run,
            });
        } else if !line.trim().is_empty() {
            above = Some(line);
        }
    }
    out
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// What a test swaps in for what a user types: the sandbox's credentials for the
/// placeholders, a database of the test's own for `linkledger`, a free port for the
/// sandbox's default one, and a wait until a server started in the background
/// listens (a person types the next line slower than a shell runs it).
const SWAPS: &[(&str, &str)] = &[
    ("you@example.com", "sandbox"),
    ("your-api-password", "sandbox"),
    ("createdb linkledger", "createdb {db}"),
    ("postgres:///linkledger", "postgres:///{db}"),
    (
        "linkledger sandbox &",
        "linkledger sandbox --listen 127.0.0.1:{port} & listening {port}",
    ),
    ("127.0.0.1:8089", "127.0.0.1:{port}"),
];

/// Defined before each session: `listening PORT` waits (up to 10 s) until something
/// listens on the port.
const PRELUDE: &str = r#"set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
listening() {
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_shell_snippet_of_the_readme_is_run_or_says_why_not() {
    let all = snippets(&readme());
    assert!(all.len() >= 7, "{all:#?}");
    for s in &all {
        if let Some(why) = &s.not_run {
            assert!(
                why.len() > 10,
                "README line {}: say why it is not run",
                s.line
            );
        }
    }
    let run = all.iter().filter(|s| s.not_run.is_none()).count();
    assert!(run >= 3, "{all:#?}");
    // The path from the demo to one's own data is among what runs.
    assert!(
        all.iter().any(|s| s.section == "Your own data"
            && s.not_run.is_none()
            && s.text.contains("linkledger run --once")),
        "{all:#?}"
    );
}

#[tokio::test]
async fn the_readmes_shell_snippets_run_as_written_against_the_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = snippets(&readme());
    let mut sections: Vec<(String, Vec<&Snippet>)> = Vec::new();
    for s in all.iter().filter(|s| s.not_run.is_none()) {
        match sections.last_mut() {
            Some((name, list)) if *name == s.section => list.push(s),
            _ => sections.push((s.section.clone(), vec![s])),
        }
    }
    let sb = default_sandbox().await;
    let bin = Path::new(env!("CARGO_BIN_EXE_linkledger"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (section, list) in sections {
        let db = TestDb::unmade();
        let port = free_port();
        let wd = tempfile::tempdir().unwrap();
        for dir in ["jobs", "examples/jobs", "config"] {
            copy_dir(&root.join(dir), &wd.path().join(dir));
        }
        let mut script = String::from(PRELUDE);
        for s in &list {
            let mut text = s.text.clone();
            for (from, to) in SWAPS {
                let to = to
                    .replace("{db}", &db.name)
                    .replace("{port}", &port.to_string());
                text = text.replace(from, &to);
            }
            script.push_str(&format!("# README line {}\n{text}", s.line));
        }
        // What a user's shell would not have set: the sandbox as the API, its
        // credentials, and the test's database (a section that makes its own sets its
        // own).
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg("-c")
            .arg(&script)
            .current_dir(wd.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", wd.path())
            .env("LINKLEDGER_API__BASE_URL", sb.base_url())
            .env("DATAFORSEO_LOGIN", "sandbox")
            .env("DATAFORSEO_PASSWORD", "sandbox")
            .env("DATABASE_URL", &db.url)
            .envs(db.libpq_env())
            .kill_on_drop(true);
        if section != "Your own data" {
            // Sections that do not make a database use the test's, made here.
            let created = tokio::process::Command::new("createdb")
                .arg(&db.name)
                .envs(db.libpq_env())
                .env("PATH", &path)
                .output()
                .await
                .unwrap();
            assert!(created.status.success(), "{}", stderr(&created));
        }
        let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("section {section:?} did not finish:\n{script}"))
            .unwrap();
        assert!(
            out.status.success(),
            "section {section:?} failed ({}):\n{script}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        if section == "Your own data" {
            // The template's targets are in the warehouse, read with psql.
            let text = stdout(&out);
            assert!(
                text.contains("example.com") && text.contains("example.org"),
                "{text}"
            );
        }
    }
}
