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
