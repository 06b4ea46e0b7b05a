//! `d42sim demo`: the whole d42sync job against an in-process simulator, in one command.

use std::process::{Command, Output, Stdio};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_d42sim");

/// Runs a prepared command to completion off the async runtime.
async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Stdout and stderr as text.
fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let mut cmd = Command::new(BIN);
    cmd.args(["demo", "--devices", "500", "--dir"])
        .arg(&demo_dir);
    let out = output(cmd).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("pulled 500 devices"), "{stdout}");
    assert!(stdout.contains("pushed 3 buildings"), "{stdout}");
    assert!(stdout.contains("sqlite3 "), "{stdout}");
    let mut seen = std::collections::HashSet::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        // A label at the start of a line ("database", "config:") says one thing once.
        let label = line
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(':');
        let key = if label == "sqlite3" { line } else { label };
        assert!(seen.insert(key), "printed twice: {line}\n{stdout}");
    }
    let config = std::fs::read_to_string(demo_dir.join("d42sync.toml")).unwrap();
    assert!(config.contains("d42sim simulate"), "{config}");
    let again = output({
        let mut c = Command::new(BIN);
        c.args(["demo", "--devices", "500", "--dir"]).arg(&demo_dir);
        c
    })
    .await;
    assert!(
        again.status.success(),
        "the demo can be run again: {}",
        text(&again).1
    );
}

#[tokio::test]
async fn the_demo_piped_into_head_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["demo", "--devices", "200", "--dir"])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // `| head -1`: one line read, then the reader is gone.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();

    assert!(first.starts_with("d42sync demo:"), "{first}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
