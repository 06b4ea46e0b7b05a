//! Usage errors: arguments clap refuses exit 2 with the flag named, before any config is read.

use crate::helpers::text;

#[tokio::test]
async fn a_coordinate_that_is_not_a_number_exits_2_even_without_a_config() {
    let cases = [
        vec!["--name", "HQ", "--latitude", "abc"],
        vec!["--name", "HQ", "--latitude", "91"],
        vec!["--name", "HQ", "--longitude", "-180.5"],
        vec!["--name", "HQ", "--longitude", "NaN"],
        vec!["--name", " "],
    ];
    for args in cases {
        let mut cmd = crate::helpers::command_with_config(
            std::path::Path::new("/nonexistent/d42sync.toml"),
            &["enqueue-building"],
        );
        cmd.args(&args);
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args[args.len() - 2];
        assert!(
            stderr.contains(flag),
            "{args:?} should name {flag}: {stderr}"
        );
    }
}

/// The subcommands `d42sync --help` lists, without `help` itself.
async fn subcommands() -> Vec<String> {
    let mut cmd = std::process::Command::new(crate::helpers::bin());
    cmd.arg("--help");
    let (stdout, _) = text(&crate::helpers::output(cmd).await);
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn config_is_offered_only_by_commands_that_read_it() {
    // The arguments a command needs before it gets as far as the config.
    let required = |command: &str| -> &'static [&'static str] {
        match command {
            "enqueue-building" => &["--name", "HQ"],
            "requeue" => &["--all-dead"],
            _ => &[],
        }
    };

    let commands = subcommands().await;

    assert!(commands.contains(&"run".to_string()), "{commands:?}");
    for absent in ["simulate", "demo"] {
        assert!(
            !commands.contains(&absent.to_string()),
            "{absent} belongs to d42sim"
        );
    }
    for command in &commands {
        let mut help = std::process::Command::new(crate::helpers::bin());
        help.args([command, "--help"]);
        let (usage, _) = text(&crate::helpers::output(help).await);
        assert!(usage.contains("--config"), "{command} --help: {usage}");
        let mut cmd = crate::helpers::command_with_config(
            std::path::Path::new("/nonexistent/d42sync.toml"),
            &[command],
        );
        cmd.args(required(command));
        let out = crate::helpers::output(cmd).await;
        let (_, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(78),
            "{command} reads the config it is given: {stderr}"
        );
    }
}
