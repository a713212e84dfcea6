//! Where a new connection's password comes from: the connect options (rotated with
//! `set_password`), a file re-read when it changes, or a provider called per connect.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_core::future::BoxFuture;
use pool_config::Secret;

/// An error from a [`CredentialsProvider`]: shown as the provider's failure's cause, so it
/// must not carry the secret either.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Called on every connect for the password to log in with (e.g. a short-lived cloud IAM
/// database token); see [`PgConnector::credentials`](crate::PgConnector::credentials).
pub type CredentialsProvider =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Secret, ProviderError>> + Send + Sync>;

/// The password for a connect could not be had: the password file could not be read, or
/// the credentials provider failed or did not answer in time. The pool reports it at once,
/// as a refused login. It never contains the password.
#[derive(Debug)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The password file could not be read (missing, unreadable, empty, too long).
    File {
        /// The file.
        path: PathBuf,
        /// Why, naming the file, never its contents.
        reason: String,
    },
    /// The credentials provider returned an error.
    Provider(ProviderError),
    /// The credentials provider did not answer within the connect timeout.
    TimedOut(Duration),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::File { path, reason } => write!(
                f,
                "cannot read the password file {}: {reason}",
                path.display()
            ),
            CredentialsError::Provider(_) => f.write_str("the credentials provider failed"),
            CredentialsError::TimedOut(after) => write!(
                f,
                "the credentials provider did not answer within {after:?} (the connect timeout)"
            ),
        }
    }
}

impl std::error::Error for CredentialsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CredentialsError::Provider(source) => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Where the password comes from.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    /// The connect options' own (`set_password`).
    #[default]
    Options,
    File(Arc<PasswordFile>),
    Provider(CredentialsProvider),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Options => f.write_str("Options"),
            Credentials::File(file) => write!(f, "File({})", file.path.display()),
            Credentials::Provider(_) => f.write_str("Provider"),
        }
    }
}

impl Credentials {
    /// The password for the next connect, `None` for the options' own; a provider is given
    /// `bound` to answer.
    pub(crate) async fn password(
        &self,
        bound: Duration,
    ) -> Result<Option<Secret>, CredentialsError> {
        match self {
            Credentials::Options => Ok(None),
            Credentials::File(file) => file.read().map(Some),
            Credentials::Provider(provider) => tokio::time::timeout(bound, provider())
                .await
                .map_err(|_| CredentialsError::TimedOut(bound))?
                .map(Some)
                .map_err(CredentialsError::Provider),
        }
    }
}

/// A password file, read again only when its metadata changes.
pub(crate) struct PasswordFile {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Secret)>>,
}

/// What tells a changed file apart without reading it: a rewrite changes the modification
/// time or the length, a Kubernetes or Vault agent swap (a new file renamed or linked in
/// place) the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        }
    }
}

impl PasswordFile {
    pub(crate) fn new(path: &Path) -> Self {
        PasswordFile {
            path: path.to_owned(),
            cached: Mutex::new(None),
        }
    }

    /// The password: the cached one while the file's metadata is unchanged (one `stat`),
    /// else the file read again, less one trailing newline.
    pub(crate) fn read(&self) -> Result<Secret, CredentialsError> {
        let failed = |reason: String| CredentialsError::File {
            path: self.path.clone(),
            reason,
        };
        let stamp = std::fs::metadata(&self.path)
            .map(|meta| Stamp::of(&meta))
            .map_err(|e| failed(e.to_string()))?;
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, secret)) = &*cached
            && *seen == stamp
        {
            return Ok(secret.clone());
        }
        // A change between the `stat` and the read shows as a new stamp next time.
        let secret = Secret::read_file(&self.path).map_err(|e| failed(e.to_string()))?;
        *cached = Some((stamp, secret.clone()));
        Ok(secret)
    }
}

/// Why a connect had no password, as the pool reports it: a refused login.
pub(crate) fn is_credentials_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Configuration(e) if e.is::<CredentialsError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_again_when_it_changes_and_errors_never_show_it() {
        let dir = std::env::temp_dir().join(format!("pool-core-pwfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("password");
        std::fs::write(&path, "first-secret\n").unwrap();
        let file = PasswordFile::new(&path);
        assert_eq!(file.read().unwrap().expose(), "first-secret");
        // Another length: seen even within the file system's time granularity.
        std::fs::write(&path, "second-secret-longer\r\n").unwrap();
        assert_eq!(file.read().unwrap().expose(), "second-secret-longer");
        // Swapped in by rename, as secret mounts do: a new inode.
        let staged = dir.join("staged");
        std::fs::write(&staged, "third-secret-longerX").unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert_eq!(file.read().unwrap().expose(), "third-secret-longerX");

        std::fs::write(&path, "").unwrap();
        let error = file.read().unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("empty"));
        std::fs::remove_file(&path).unwrap();
        let error = file.read().unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_provider_is_bounded_and_a_failing_one_named() {
        let slow: CredentialsProvider = Arc::new(|| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Secret::new("late-secret"))
            })
        });
        let error = Credentials::Provider(slow)
            .password(Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(error, CredentialsError::TimedOut(d) if d == Duration::from_secs(2)));
        assert!(
            error.to_string().contains("did not answer within 2s"),
            "{error}"
        );

        let failing: CredentialsProvider =
            Arc::new(|| Box::pin(async { Err("token endpoint returned 503".into()) }));
        let error = Credentials::Provider(failing)
            .password(Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "the credentials provider failed");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(source, "token endpoint returned 503");
    }
}
