//! # Implementation details
//!
//! The docker backend. Containers run through testcontainers; the image is the official
//! `postgres` one when it is present or can be pulled, else one built here `FROM scratch`
//! out of the PostgreSQL binaries installed on this machine (see [`crate::image`]). The
//! container's port is bound to 127.0.0.1 on a port we choose, so it stays the same across a
//! container restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use anyhow::Context as _;
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::credentials::{SUPERUSER, SUPERUSER_PASSWORD};
use crate::endpoint::Endpoint;
use crate::process::{free_port, is_alive, run};
use crate::state_dir::{CONTAINER_ID_FILE, OWNER_LABEL, StateDir};

/// Overrides the image (`name:tag`); it must behave like the official `postgres` image.
pub const DOCKER_IMAGE_ENV: &str = "SERVIO_TEST_DOCKER_IMAGE";
/// The official image tried first.
const OFFICIAL_IMAGE: (&str, &str) = ("postgres", "15");
/// How long the official image may take to pull.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a container may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How many host ports to try when another process takes the free one first.
const PORT_ATTEMPTS: usize = 5;

/// A PostgreSQL image to run.
#[derive(Debug, Clone)]
pub(crate) struct ImageChoice {
    name: String,
    tag: String,
    /// Whether it initialises itself from `POSTGRES_*` variables (the official image) or
    /// carries a ready data directory (the locally built one).
    official: bool,
    /// Why this image, for the run's output.
    why: String,
}

impl ImageChoice {
    fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// The image for this process, found, pulled or built once.
async fn image() -> anyhow::Result<&'static ImageChoice> {
    static IMAGE: OnceCell<Result<ImageChoice, String>> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async { find_image().await.map_err(|error| format!("{error:#}")) })
        .await
        .as_ref()
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// Whether the docker backend can run here: an engine answers and an image is present,
/// pullable or buildable (building it if need be). Returns why, in words.
pub(crate) async fn availability() -> anyhow::Result<String> {
    let image = image().await?;
    Ok(image.why.clone())
}

async fn docker(args: &[&str], what: &str) -> anyhow::Result<String> {
    run(Command::new("docker").args(args), what).await
}

async fn image_exists(reference: &str) -> bool {
    docker(
        &["image", "inspect", "--format", "{{.Id}}", reference],
        "docker image inspect",
    )
    .await
    .is_ok()
}

async fn find_image() -> anyhow::Result<ImageChoice> {
    let version = tokio::time::timeout(
        Duration::from_secs(15),
        docker(
            &["version", "--format", "{{.Server.Version}}"],
            "docker version",
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the Docker engine did not answer `docker version` within 15s"))?
    .map_err(|error| {
        error.context(
            "no Docker engine answers: install Docker and start it, or make the socket \
             reachable (DOCKER_HOST)",
        )
    })?;
    let version = version.trim().to_owned();

    if let Ok(reference) = std::env::var(DOCKER_IMAGE_ENV) {
        let (name, tag) = reference
            .rsplit_once(':')
            .unwrap_or((reference.as_str(), "latest"));
        let choice = ImageChoice {
            name: name.to_owned(),
            tag: tag.to_owned(),
            official: true,
            why: format!("Docker {version} answers; {DOCKER_IMAGE_ENV} names {reference}"),
        };
        if !image_exists(&reference).await {
            pull(&reference).await?;
        }
        return Ok(choice);
    }

    let official = format!("{}:{}", OFFICIAL_IMAGE.0, OFFICIAL_IMAGE.1);
    let official_choice = |why: String| ImageChoice {
        name: OFFICIAL_IMAGE.0.to_owned(),
        tag: OFFICIAL_IMAGE.1.to_owned(),
        official: true,
        why,
    };
    if image_exists(&official).await {
        return Ok(official_choice(format!(
            "Docker {version} answers and the official {official} image is present"
        )));
    }
    let pull_error = match pull(&official).await {
        Ok(()) => {
            return Ok(official_choice(format!(
                "Docker {version} answers and the official {official} image was pulled"
            )));
        }
        Err(error) => format!("{error:#}"),
    };
    let local = crate::image::ensure_local_image().await.with_context(|| {
        format!(
            "Docker {version} answers, but {official} cannot be pulled ({}) and no image \
                 could be built from local PostgreSQL binaries",
            first_line(&pull_error)
        )
    })?;
    let (name, tag) = local
        .reference
        .rsplit_once(':')
        .unwrap_or((&local.reference, "latest"));
    Ok(ImageChoice {
        name: name.to_owned(),
        tag: tag.to_owned(),
        official: false,
        why: format!(
            "Docker {version} answers; {official} cannot be pulled ({}), so {} {}",
            first_line(&pull_error),
            local.reference,
            if local.built {
                "was built from the local PostgreSQL binaries"
            } else {
                "(built earlier from the local PostgreSQL binaries) is reused"
            }
        ),
    })
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

async fn pull(reference: &str) -> anyhow::Result<()> {
    tokio::time::timeout(
        PULL_TIMEOUT,
        docker(&["pull", "--quiet", reference], "docker pull"),
    )
    .await
    .map_err(|_| anyhow::anyhow!("pulling {reference} took longer than {PULL_TIMEOUT:?}"))?
    .map(drop)
}

/// `<hostname>:<pid>`: containers of other machines sharing the engine are never swept.
fn owner_label(pid: u32) -> String {
    format!("{}:{pid}", hostname())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Removes containers whose owning process on this machine is gone; returns how many.
pub(crate) fn sweep_containers() -> usize {
    let Ok(output) = std::process::Command::new("docker")
        .args(["ps", "--all", "--filter"])
        .arg(format!("label={OWNER_LABEL}"))
        .arg("--format")
        .arg(format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"))
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return 0;
    };
    let host = hostname();
    let mut removed = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((id, owner)) = line.split_once(' ') else {
            continue;
        };
        let Some((owner_host, pid)) = owner.rsplit_once(':') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if owner_host == host && pid != std::process::id() && !is_alive(pid) {
            tracing::info!(
                container = id,
                "removing a container left by a dead test run"
            );
            let _ = std::process::Command::new("docker")
                .args(["rm", "--force", "--volumes", id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            removed += 1;
        }
    }
    removed
}

/// A PostgreSQL container.
pub(crate) struct DockerServer {
    container: ContainerAsync<GenericImage>,
    image: String,
    port: u16,
    // Dropped after the container: removes it again if testcontainers could not.
    state: StateDir,
}

impl std::fmt::Debug for DockerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerServer")
            .field("id", &self.container.id())
            .field("image", &self.image)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DockerServer {
    /// Starts a container and waits until it accepts logins.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            sweep_containers();
        });
        let image = image().await?;
        let state = StateDir::create("docker")?;
        let mut attempt = 1;
        let (container, port) = loop {
            let port = free_port()?;
            match run_container(image, port).await {
                Ok(container) => break (container, port),
                Err(error)
                    if attempt < PORT_ATTEMPTS && format!("{error:#}").contains("already") =>
                {
                    tracing::debug!("host port {port} was taken, trying another: {error:#}");
                    attempt += 1;
                }
                Err(error) => {
                    return Err(
                        error.context(format!("cannot start a {} container", image.reference()))
                    );
                }
            }
        };
        std::fs::write(state.path().join(CONTAINER_ID_FILE), container.id())?;
        let server = Self {
            container,
            image: image.reference(),
            port,
            state,
        };
        let endpoint = server.endpoint();
        endpoint.wait_ready(READY_TIMEOUT).await?;
        if image.official {
            endpoint.ensure_app_role().await?;
        }
        Ok(server)
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint::local("127.0.0.1", self.port)
    }

    pub(crate) fn id(&self) -> &str {
        self.container.id()
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.state.path().to_owned()
    }
}

async fn run_container(
    image: &ImageChoice,
    port: u16,
) -> anyhow::Result<ContainerAsync<GenericImage>> {
    let mut request = GenericImage::new(&image.name, &image.tag)
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::Nothing)
        .with_label(OWNER_LABEL, owner_label(std::process::id()))
        .with_startup_timeout(READY_TIMEOUT)
        .with_host_config_modifier(move |config| {
            // Listen on 127.0.0.1 only, on a port that survives a container restart.
            config.publish_all_ports = Some(false);
            config.port_bindings = Some(HashMap::from([(
                "5432/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(port.to_string()),
                }]),
            )]));
        });
    if image.official {
        request = request
            .with_env_var("POSTGRES_USER", SUPERUSER)
            .with_env_var("POSTGRES_PASSWORD", SUPERUSER_PASSWORD)
            .with_env_var("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
            .with_env_var("POSTGRES_INITDB_ARGS", "--auth-host=scram-sha-256")
            .with_cmd([
                "postgres",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ]);
    }
    Ok(request.start().await?)
}
