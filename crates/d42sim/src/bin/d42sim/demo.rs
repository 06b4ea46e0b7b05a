//! `d42sim demo`: the whole d42sync job once against an in-process simulator, into a local
//! database, with a summary.

use crate::cli::DemoArgs;
use d42sim::{SimConfig, Simulator};
use d42sync::commands::status;
use d42sync::config;
use d42sync::d42::Client;
use d42sync::jobs::{pull, push_buildings};
use d42sync::store::{Db, queue};
use std::os::unix::fs::PermissionsExt;
use tokio_util::sync::CancellationToken;

/// Example queries printed at the end of the demo.
const EXAMPLE_QUERIES: [&str; 2] = [
    "SELECT type, count(*) FROM devices GROUP BY type ORDER BY 2 DESC;",
    "SELECT name, os_name, os_version FROM devices WHERE in_service AND os_name IS NOT NULL LIMIT 5;",
];

/// `demo`: simulator, config, one pull, a few buildings pushed, the status.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let sim = Simulator::start(
        SimConfig {
            devices: args.devices,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let defaults = SimConfig::default();
    let secret = dir.join("secret_key");
    std::fs::write(&secret, &defaults.secret_key)?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    let config_path = dir.join("d42sync.toml");
    std::fs::write(
        &config_path,
        format!(
            "# Written by `d42sim demo` for its in-process simulator, which stopped when the demo\n\
             # ended: base_url below points at nothing now. For a simulator that stays, run\n\
             # `d42sim simulate` and set base_url = \"http://127.0.0.1:8042\".\n\
             [device42]\nbase_url = \"{}\"\nclient_key = \"{}\"\nsecret_key_file = \"{}\"\n\n\
             [database]\npath = \"{}\"\n\n[devices]\nendpoint = \"/api/2.0/devices/\"\n\n\
             [log]\nformat = \"text\"\nlevel = \"warn\"\n",
            sim.base_url(),
            defaults.client_key,
            secret.display(),
            dir.join("inventory.db").display()
        ),
    )?;
    let settings = config::load(&config_path)?;
    let _lock = d42sync::daemon::lock::InstanceLock::acquire(&settings.database.path)?;
    let db = Db::open(&settings.database.path).await?;
    d42sync::daemon::recover(&db).await?;
    let client = Client::new(&settings.device42, d42sync::metrics::Metrics::default())
        .map_err(|e| anyhow::anyhow!(e))?;
    let stop = CancellationToken::new();

    say!(
        "d42sync demo: simulated Device42 with {} devices at {}",
        args.devices,
        sim.base_url()
    );
    let pull = pull::run(&db, &client, &settings.devices, Default::default(), &stop).await?;
    say!(
        "pulled {} devices in {:.2}s ({} added, {} changed, {} removed)",
        pull.counts.items,
        pull.duration.as_secs_f64(),
        pull.counts.added,
        pull.counts.changed,
        pull.counts.removed
    );
    for (name, address) in [
        ("Head office", "1 Main St, New York"),
        ("Lab", "42 Research Way, Boston"),
        ("DC-West", "7 Server Rd, Reno"),
    ] {
        let building = queue::BuildingFields {
            name: name.into(),
            address: Some(address.into()),
            ..Default::default()
        };
        queue::enqueue(&db, &building).await?;
    }
    let push = push_buildings::run(&db, &client, &settings.buildings, &stop).await?;
    say!(
        "pushed {} buildings ({} failed)",
        push.counts.sent,
        push.counts.failed
    );
    say!(
        "\n{}",
        status::render(&status::gather(&db, &settings).await?)
    );
    db.close().await;
    sim.shutdown().await;
    say!(
        "config:   {} (its simulator is gone with the demo; for one that stays, run `d42sim simulate` and point base_url at http://127.0.0.1:8042)",
        config_path.display()
    );
    say!("try:");
    for q in EXAMPLE_QUERIES {
        say!("  sqlite3 {} \"{q}\"", settings.database.path.display());
    }
    Ok(())
}
