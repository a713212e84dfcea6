//! # Implementation details
//!
//! Building a PostgreSQL image where none can be pulled: `FROM scratch` with the installed
//! server binary, its extension libraries and share directory, the shared libraries `ldd`
//! names, time zone data, a minimal `/etc/passwd` with the unprivileged account, and a data
//! directory initialised on this machine (with the testkit's roles and scram-sha-256), so the
//! container starts in about a second. It is tagged and reused by later runs.
//!
//! We build with the `docker build` command rather than through testcontainers, because the
//! context must keep the data directory's mode (0700), which PostgreSQL checks.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use tokio::process::Command;

use crate::cluster::{Listen, init_data_dir};
use crate::process::{Account, give_to_server, pg_bindir, run, server_account};
use crate::state_dir::StateDir;

/// The repository of locally built images; the tag is `<major>-local`.
pub const LOCAL_IMAGE_REPOSITORY: &str = "servio-pool/postgres";

/// A local image and whether this call built it.
#[derive(Debug)]
pub(crate) struct LocalImage {
    pub(crate) reference: String,
    pub(crate) built: bool,
}

/// The locally built image, building it if it is not there yet.
pub(crate) async fn ensure_local_image() -> anyhow::Result<LocalImage> {
    let bindir = match pg_bindir() {
        Ok(bindir) => bindir,
        // Without binaries nothing can be built, but an image built earlier still serves.
        Err(error) => return existing_local_image().await.ok_or(error),
    };
    let version = run(
        Command::new(bindir.join("postgres")).arg("--version"),
        "postgres --version",
    )
    .await?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let major = version
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .filter(|v| v.chars().all(|c| c.is_ascii_digit()))
        .context("cannot read the PostgreSQL version from `postgres --version`")?
        .to_owned();
    let reference = format!("{LOCAL_IMAGE_REPOSITORY}:{major}-local");
    if run(
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &reference]),
        "docker image inspect",
    )
    .await
    .is_ok()
    {
        return Ok(LocalImage {
            reference,
            built: false,
        });
    }
    tracing::info!(
        "building {reference} from the PostgreSQL binaries in {}",
        bindir.display()
    );
    build(&bindir, &reference).await?;
    Ok(LocalImage {
        reference,
        built: true,
    })
}

/// Any locally built image already present (the newest major version).
async fn existing_local_image() -> Option<LocalImage> {
    let tags = run(
        Command::new("docker").args(["images", "--format", "{{.Tag}}", LOCAL_IMAGE_REPOSITORY]),
        "docker images",
    )
    .await
    .ok()?;
    let mut local: Vec<(u32, &str)> = tags
        .lines()
        .filter_map(|tag| Some((tag.strip_suffix("-local")?.parse().ok()?, tag)))
        .collect();
    local.sort();
    let (_, tag) = local.pop()?;
    Some(LocalImage {
        reference: format!("{LOCAL_IMAGE_REPOSITORY}:{tag}"),
        built: false,
    })
}

async fn pg_config(bindir: &Path, flag: &str) -> anyhow::Result<String> {
    let out = run(
        Command::new(bindir.join("pg_config")).arg(flag),
        "pg_config",
    )
    .await?;
    Ok(out.trim().to_owned())
}

async fn build(bindir: &Path, reference: &str) -> anyhow::Result<()> {
    // The context is a state directory: removed after the build, or by the watchdog.
    let context = StateDir::create("image")?;
    let rootfs = context.path().join("rootfs");
    let pkglibdir = pg_config(bindir, "--pkglibdir").await?;
    let sharedir = pg_config(bindir, "--sharedir").await?;

    let postgres = bindir.join("postgres");
    copy_into(&rootfs, &postgres).await?;
    copy_into(&rootfs, Path::new(&pkglibdir)).await?;
    copy_into(&rootfs, Path::new(&sharedir)).await?;
    if Path::new("/usr/share/zoneinfo").is_dir() {
        copy_into(&rootfs, Path::new("/usr/share/zoneinfo")).await?;
    }
    let mut objects = vec![postgres.clone()];
    for entry in std::fs::read_dir(&pkglibdir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("llvmjit") {
            // JIT needs libLLVM (over 100 MB); the test server runs with jit = off.
            let _ = std::fs::remove_file(rootfs.join(entry.path().strip_prefix("/")?));
        } else if name.ends_with(".so") {
            objects.push(entry.path());
        }
    }
    for library in shared_libraries(&objects).await? {
        copy_into(&rootfs, Path::new(&library)).await?;
    }

    let account = server_account()?.unwrap_or_else(current_account);
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/nonexistent\n\
             postgres:x:{}:{}:PostgreSQL:/var/lib/postgresql:/nonexistent\n",
            account.uid, account.gid
        ),
    )?;
    std::fs::write(
        etc.join("group"),
        format!("root:x:0:\npostgres:x:{}:\n", account.gid),
    )?;
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;

    // The data directory lives beside rootfs so it can be copied with the server's owner.
    let home = context.path().join("home");
    std::fs::create_dir(&home)?;
    give_to_server(&home)?;
    init_data_dir(bindir, &home.join("data"), &Listen::Container).await?;

    let libdirs = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib/aarch64-linux-gnu:\
                   /usr/lib/aarch64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib";
    let dockerfile = format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         COPY --chown={uid}:{gid} home/ /var/lib/postgresql/\n\
         USER {uid}:{gid}\n\
         ENV LD_LIBRARY_PATH={libdirs}:{pkglibdir} LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data\n\
         EXPOSE 5432\n\
         STOPSIGNAL SIGINT\n\
         ENTRYPOINT [\"{postgres}\", \"-D\", \"/var/lib/postgresql/data\"]\n",
        uid = account.uid,
        gid = account.gid,
        postgres = postgres.display(),
    );
    std::fs::write(context.path().join("Dockerfile"), dockerfile)?;
    run(
        Command::new("docker")
            // The classic builder: it works with every engine and needs no BuildKit session.
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--tag", reference])
            .args(["--label", "servio-pool-testkit.image=local"])
            .arg(context.path()),
        &format!("docker build of {reference}"),
    )
    .await?;
    Ok(())
}

fn current_account() -> Account {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata("/proc/self");
    Account {
        uid: meta.as_ref().map_or(0, |m| m.uid()),
        gid: meta.as_ref().map_or(0, |m| m.gid()),
    }
}

/// Copies `source` to the same path under `rootfs`: a file with its links followed (shared
/// libraries are often links), a directory with its links kept (zoneinfo links within itself).
async fn copy_into(rootfs: &Path, source: &Path) -> anyhow::Result<()> {
    let relative = source.strip_prefix("/").unwrap_or(source);
    let target = rootfs.join(relative);
    let parent = target.parent().context("cannot copy the root directory")?;
    std::fs::create_dir_all(parent)?;
    if !source.is_dir() {
        std::fs::copy(source, &target)
            .with_context(|| format!("copying {} into the image", source.display()))?;
        return Ok(());
    }
    run(
        Command::new("cp")
            .args(["--recursive", "--no-dereference", "--preserve=mode"])
            .arg(source)
            .arg(parent),
        &format!("copying {} into the image", source.display()),
    )
    .await
    .map(drop)
}

/// Every shared library (and the dynamic loader) the given objects load, from `ldd`.
async fn shared_libraries(objects: &[std::path::PathBuf]) -> anyhow::Result<BTreeSet<String>> {
    let mut libraries = BTreeSet::new();
    for object in objects {
        let Ok(out) = run(Command::new("ldd").arg(object), "ldd").await else {
            continue;
        };
        for line in out.lines() {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                libraries.insert(path.to_owned());
            }
        }
    }
    anyhow::ensure!(
        !libraries.is_empty(),
        "`ldd` found no shared libraries for postgres: is ldd installed?"
    );
    Ok(libraries)
}
