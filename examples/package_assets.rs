//! Writes what the Debian package ships beside the binary and that is generated from the clap
//! definitions in [`d42sync::cli`]: the man pages and the shell completions.
//!
//! ```text
//! cargo run --locked --example package_assets -- target/assets
//! ```
//!
//! Layout under the given directory (created if missing):
//! - `man/d42sync.1`, and `man/d42sync-<command>.1` for each subcommand;
//! - `completions/d42sync.bash`, `completions/_d42sync` (zsh), `completions/d42sync.fish`.
//!
//! An example rather than a subcommand, so that the installed binary does not carry a generator
//! nobody runs on a server; `packaging/build-deb` runs it before `cargo deb`.

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{Roff, roman};
use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: package_assets <output directory>")?
        .into();
    let command = d42sync::cli::Cli::command();
    man_pages(&command, &out.join("man"))?;
    completions(command, &out.join("completions"))?;
    println!("man pages and completions written to {}", out.display());
    Ok(())
}

/// One page for the command and one for each subcommand, as `git` has (`d42sync-pull.1`).
fn man_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command.clone(), dir)
        .with_context(|| format!("cannot write man pages to {}", dir.display()))?;
    let main = dir.join("d42sync.1");
    std::fs::write(&main, main_page(command)?)
        .with_context(|| format!("cannot write {}", main.display()))
}

/// The main page, with the paragraphs that end `d42sync --help` ("Exit status: ...",
/// "Files: ...") as sections of their own instead of clap_mangen's one EXTRA section.
fn main_page(command: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let after_help = command
        .get_after_long_help()
        .context("the command has no closing help paragraphs")?
        .to_string();
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    let mut sections = Roff::new();
    for paragraph in after_help.split("\n\n") {
        let (heading, body) = paragraph
            .split_once(": ")
            .with_context(|| format!("a closing help paragraph has no heading: {paragraph}"))?;
        sections
            .control("SH", [heading.to_uppercase().as_str()])
            .text([roman(body)]);
    }
    sections.to_writer(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// The shells Debian has vendor completion directories for.
fn completions(mut command: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "d42sync", dir)
            .with_context(|| format!("cannot write {shell} completions to {}", dir.display()))?;
    }
    Ok(())
}
