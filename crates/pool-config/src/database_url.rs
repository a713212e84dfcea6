//! # Implementation details
//!
//! `DATABASE_URL` (`postgres://user:password@host:port/database?sslmode=require`) split into
//! the settings it names. The URL is only ever shown with its password masked. Several hosts
//! are written as libpq writes them (`postgres://u@db-a:5432,db-b:5433/orders`): the URL
//! parser takes one host, so the list is cut out first and parsed here.

use figment::value::{Dict, Value};
use url::Url;

use crate::{ConfigError, Secret, SslMode};

/// The settings a `DATABASE_URL` names, and the URL as it may be shown.
#[derive(Debug)]
pub(crate) struct DatabaseUrl {
    /// Setting name → value, only for the parts the URL gives.
    pub(crate) values: Dict,
    /// The URL with its password replaced by `***`.
    pub(crate) masked: String,
}

/// Query parameters understood in the URL, and the setting each sets. libpq also accepts the
/// password as a parameter (`?password=…`).
const PARAMETERS: [(&str, &str); 6] = [
    ("sslmode", "ssl_mode"),
    ("target_session_attrs", "target_session_attrs"),
    ("load_balance_hosts", "load_balance_hosts"),
    ("sslrootcert", "ssl_root_cert"),
    ("application_name", "application_name"),
    ("password", "password"),
];

/// Whether the value of query parameter `name` is a secret and must never be shown: libpq's
/// `password` and `sslpassword` (the client key's passphrase), and anything else that names a
/// password or secret, whatever its case, since an unknown parameter is echoed in the error
/// that rejects it.
pub(crate) fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "passwd"]
        .iter()
        .any(|word| name.contains(word))
}

impl DatabaseUrl {
    /// Splits `raw` into settings.
    pub(crate) fn parse(raw: &str) -> Result<Self, ConfigError> {
        let (single, hosts) = HostList::cut(raw);
        let url = Url::parse(&single).map_err(|e| ConfigError::DatabaseUrl {
            masked: None,
            reason: format!("not a URL ({e})"),
        })?;
        let masked = match &hosts {
            Some(list) => list.restore(&mask(&url)),
            None => mask(&url),
        };
        let fail = |reason: String| ConfigError::DatabaseUrl {
            masked: Some(masked.clone()),
            reason,
        };
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(fail(format!(
                "the scheme is `{}`, not postgres or postgresql",
                url.scheme()
            )));
        }
        let mut values = Dict::new();
        let mut put = |key: &str, value: String| {
            values.insert(key.to_owned(), Value::from(value));
        };
        if let Some(list) = &hosts {
            let (host, port) = list.settings().map_err(fail)?;
            put("host", host);
            if let Some(port) = port {
                put("port", port);
            }
        } else if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
            put(
                "host",
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            );
        }
        if let Some(port) = url.port().filter(|_| hosts.is_none()) {
            put("port", port.to_string());
        }
        let database = percent_decode(url.path().trim_start_matches('/')).ok_or_else(|| {
            fail(
                "the database name is not valid percent-encoded UTF-8 (write `%` as `%25`)"
                    .to_owned(),
            )
        })?;
        if !database.is_empty() {
            put("database", database);
        }
        let username = percent_decode(url.username()).ok_or_else(|| {
            fail("the user name is not valid percent-encoded UTF-8 (write `%` as `%25`)".to_owned())
        })?;
        if !username.is_empty() {
            put("username", username);
        }
        let in_userinfo = url.password().is_some();
        if let Some(password) = url.password() {
            let password = percent_decode(password).ok_or_else(|| {
                fail(
                    "the password is not valid percent-encoded UTF-8 (write `%` as `%25`)"
                        .to_owned(),
                )
            })?;
            put("password", password);
        }
        // Split and decoded as libpq does (`+` stays `+`), not as an HTML form.
        for pair in url.query().unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(name), Some(value)) = (percent_decode(name), percent_decode(value)) else {
                return Err(fail(
                    "a query parameter is not valid percent-encoded UTF-8 (write `%` as `%25`)"
                        .to_owned(),
                ));
            };
            let Some((_, key)) = PARAMETERS.iter().find(|(p, _)| *p == name) else {
                return Err(fail(format!(
                    "unsupported parameter `{name}` (accepted: sslmode, target_session_attrs, \
                     load_balance_hosts, sslrootcert, application_name, password)"
                )));
            };
            if *key == "password" && in_userinfo {
                return Err(fail(
                    "the password is given twice, after the user name and as ?password=: \
                     give it once"
                        .to_owned(),
                ));
            }
            if *key == "ssl_mode" {
                value
                    .parse::<SslMode>()
                    .map_err(|accepted| fail(format!("sslmode `{value}` is not {accepted}")))?;
            }
            put(key, value);
        }
        Ok(DatabaseUrl { values, masked })
    }
}

/// The comma-separated hosts of a multi-host URL, cut out so the rest parses as one URL.
#[derive(Debug)]
struct HostList {
    /// The hosts as written between `@` (or `//`) and the path.
    written: String,
}

impl HostList {
    /// Stands in for the hosts while the URL parser reads the rest.
    const PLACEHOLDER: &'static str = "servio-host-list.invalid";

    /// `raw` with its host list replaced by a placeholder, and the list; `raw` unchanged and
    /// `None` when it names at most one host.
    fn cut(raw: &str) -> (String, Option<HostList>) {
        let Some(scheme_end) = raw.find("://") else {
            return (raw.to_owned(), None);
        };
        let start = scheme_end + 3;
        let end = raw[start..]
            .find(['/', '?', '#'])
            .map_or(raw.len(), |i| start + i);
        let authority = &raw[start..end];
        let hosts_start = authority.rfind('@').map_or(start, |at| start + at + 1);
        let written = &raw[hosts_start..end];
        if !written.contains(',') {
            return (raw.to_owned(), None);
        }
        let single = format!(
            "{}{}{}",
            &raw[..hosts_start],
            Self::PLACEHOLDER,
            &raw[end..]
        );
        let list = HostList {
            written: written.to_owned(),
        };
        (single, Some(list))
    }

    /// The masked URL of the placeholder form with the hosts put back.
    fn restore(&self, masked: &str) -> String {
        masked.replacen(Self::PLACEHOLDER, &self.written, 1)
    }

    /// The `host` and `port` settings: hosts comma-separated, and the ports when any host has
    /// one (a host without one gets PostgreSQL's 5432, as in libpq).
    fn settings(&self) -> Result<(String, Option<String>), String> {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in self.written.split(',') {
            let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
                let (host, after) = rest
                    .split_once(']')
                    .ok_or_else(|| format!("the host `{entry}` opens `[` without closing it"))?;
                (host, after.strip_prefix(':'))
            } else {
                match entry.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (entry, None),
                }
            };
            let host = percent_decode(host)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    "a host of the list is empty or not valid percent-encoded UTF-8 (write the \
                     hosts as host:port,host:port)"
                        .to_owned()
                })?;
            let port = match port.filter(|p| !p.is_empty()) {
                Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    format!("the port `{p}` of host `{host}` is not a port number from 1 to 65535")
                })?),
                None => None,
            };
            hosts.push(host);
            ports.push(port);
        }
        let port = ports.iter().any(Option::is_some).then(|| {
            ports
                .iter()
                .map(|p| p.unwrap_or(5432).to_string())
                .collect::<Vec<_>>()
                .join(",")
        });
        Ok((hosts.join(","), port))
    }
}

/// The URL with its password, if any, and the value of every secret query parameter
/// (`?password=`, `?sslpassword=`) replaced by `***`.
fn mask(url: &Url) -> String {
    let mut masked = url.clone();
    if url.password().is_some() {
        // Setting a password fails only for URLs that cannot have one, which have none.
        let _ = masked.set_password(Some(Secret::MASK));
    }
    if let Some(query) = url.query() {
        // Rewritten by hand rather than re-encoded, so every other parameter reads exactly as
        // written.
        let shown: Vec<String> = query
            .split('&')
            .map(|pair| {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                let decoded = percent_decode(name).unwrap_or_else(|| name.to_owned());
                if is_secret_parameter(&decoded) {
                    format!("{name}={}", Secret::MASK)
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        masked.set_query(Some(&shown.join("&")));
    }
    masked.to_string()
}

/// Percent-decodes `s` (`%40` → `@`), strictly as libpq decodes a connection URI: `None`
/// when a `%` is not followed by two hex digits or the result is not UTF-8. Used for the parts
/// of `DATABASE_URL` and for other percent-encoded settings (e.g. OpenTelemetry headers).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(url: &'a DatabaseUrl, key: &str) -> Option<&'a str> {
        url.values.get(key).and_then(|v| v.as_str())
    }

    #[test]
    fn every_part_of_the_url_becomes_a_setting() {
        let url = DatabaseUrl::parse(
            "postgresql://app%40svc:p%40ss%3Aw0rd@db.internal:6432/orders?sslmode=verify-full&application_name=api",
        )
        .unwrap();
        assert_eq!(get(&url, "host"), Some("db.internal"));
        assert_eq!(get(&url, "port"), Some("6432"));
        assert_eq!(get(&url, "database"), Some("orders"));
        assert_eq!(get(&url, "username"), Some("app@svc"));
        assert_eq!(get(&url, "password"), Some("p@ss:w0rd"));
        assert_eq!(get(&url, "ssl_mode"), Some("verify-full"));
        assert_eq!(get(&url, "application_name"), Some("api"));
        assert_eq!(
            url.masked,
            "postgresql://app%40svc:***@db.internal:6432/orders?sslmode=verify-full&application_name=api"
        );
    }

    #[test]
    fn the_password_may_be_a_query_parameter_and_is_masked_there() {
        let url =
            DatabaseUrl::parse("postgres://app@db/orders?password=Sup3r%26S3+cret&sslmode=require")
                .unwrap();
        assert_eq!(get(&url, "password"), Some("Sup3r&S3+cret"));
        assert_eq!(
            url.masked,
            "postgres://app@db/orders?password=***&sslmode=require"
        );
        let twice = DatabaseUrl::parse("postgres://app:one@db/orders?password=two")
            .unwrap_err()
            .to_string();
        assert!(twice.contains("given twice"), "{twice}");
        assert!(
            !twice.contains("one@") && !twice.contains("=two"),
            "{twice}"
        );
    }

    #[test]
    fn several_hosts_are_listed_as_libpq_lists_them() {
        let url = DatabaseUrl::parse(
            "postgres://app:S3cret@db-a:5432,db-b:5433,[::1]/orders?target_session_attrs=read-write&load_balance_hosts=random",
        )
        .unwrap();
        assert_eq!(get(&url, "host"), Some("db-a,db-b,::1"));
        assert_eq!(get(&url, "port"), Some("5432,5433,5432"));
        assert_eq!(get(&url, "database"), Some("orders"));
        assert_eq!(get(&url, "password"), Some("S3cret"));
        assert_eq!(get(&url, "target_session_attrs"), Some("read-write"));
        assert_eq!(get(&url, "load_balance_hosts"), Some("random"));
        assert_eq!(
            url.masked,
            "postgres://app:***@db-a:5432,db-b:5433,[::1]/orders?target_session_attrs=read-write&load_balance_hosts=random"
        );
        let no_ports = DatabaseUrl::parse("postgres://db-a,db-b/orders").unwrap();
        assert_eq!(get(&no_ports, "host"), Some("db-a,db-b"));
        assert_eq!(get(&no_ports, "port"), None);
        for bad in [
            "postgres://u:S3cret@db-a:5432,,db-b/orders",
            "postgres://u:S3cret@db-a:99999,db-b/orders",
            "postgres://u:S3cret@[::1,db-b/orders",
        ] {
            let message = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(!message.contains("S3cret"), "{message}");
            assert!(message.contains("***"), "{message}");
        }
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        let url = DatabaseUrl::parse("postgres://u@[::1]/db").unwrap();
        assert_eq!(get(&url, "host"), Some("::1"));
        assert_eq!(get(&url, "port"), None);
    }

    #[test]
    fn bad_urls_are_errors_that_never_show_the_password() {
        for raw in [
            "mysql://u:Sup3rS3cret@h/db",
            "postgres://u:Sup3rS3cret@h/db?sslmode=always",
            "postgres://u:Sup3rS3cret@h/db?pool=5",
            "not a url Sup3rS3cret",
            "postgres://u:Sup3rS3cret@h:99999/db",
            "postgres://u:Sup3rS3cret%zz@h/db",
            "postgres://u@h/db?password=Sup3rS3cret&sslmode=always",
            "postgres://u@h/db?sslpassword=Sup3rS3cret",
            "postgres://u@h/db?SSLPassword=Sup3rS3cret",
            "postgres://u@h/db?pass%77ord=Sup3rS3cret&pool=1",
            "postgres://u@h/db?api_token=Sup3rS3cret",
            "postgres://u@h/db?password=Sup3rS3cret%zz",
            "postgres://u@h/db?password=Sup3r+S3cret&pool=1",
        ] {
            let message = DatabaseUrl::parse(raw).unwrap_err().to_string();
            assert!(message.starts_with("invalid DATABASE_URL"), "{message}");
            assert!(!message.contains("Sup3rS3cret"), "{message}");
        }
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode("p%40ss%3Aw0rd").as_deref(),
            Some("p@ss:w0rd")
        );
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("no escapes").as_deref(), Some("no escapes"));
        for bad in ["50%", "%zz", "%4", "%+f", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
