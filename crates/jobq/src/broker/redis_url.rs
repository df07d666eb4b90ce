//! Reading a Redis URL into the deployment it names: one server, a Cluster, or a master
//! found through Sentinel.
//!
//! The redis crate parses single-server URLs itself; the multi-host forms are ours:
//!
//! - `redis+cluster://[user:pass@]host:port,host:port,...` (`rediss+cluster://` for TLS):
//!   seed nodes of a Cluster, any subset of them;
//! - `redis+sentinel://[user:pass@]host:port,host:port,.../<master>[/<db>]`
//!   (`rediss+sentinel://`): the Sentinels watching `<master>`. The credentials are the
//!   master's (and its replicas'); Sentinels are reached without any.

use crate::error::Error;

/// The port a cluster node listens on when the URL names none.
const CLUSTER_PORT: u16 = 6379;
/// The port a Sentinel listens on when the URL names none.
const SENTINEL_PORT: u16 = 26379;

/// The deployment a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server: the URL as the redis crate reads it.
    Standalone(String),
    /// A Cluster, through these seed nodes (single-server URLs).
    Cluster { nodes: Vec<String> },
    /// The master `master` that these Sentinels (single-server URLs) agree on.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        /// A single-server URL carrying the master's credentials, database and TLS
        /// choice, for the redis crate to read them from.
        master_settings: String,
    },
}

impl Target {
    /// Reads `url`; every problem is an [`Error::InvalidUrl`] that says what to write
    /// instead.
    pub(crate) fn parse(url: &str) -> Result<Target, Error> {
        let invalid = |reason: String| Error::InvalidUrl(format!("{url:?}: {reason}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Target::Standalone(url.to_owned()));
        };
        let (server_scheme, kind) = match scheme {
            "redis+cluster" => ("redis", Kind::Cluster),
            "rediss+cluster" => ("rediss", Kind::Cluster),
            "redis+sentinel" => ("redis", Kind::Sentinel),
            "rediss+sentinel" => ("rediss", Kind::Sentinel),
            _ => return Ok(Target::Standalone(url.to_owned())),
        };
        if rest.contains(['?', '#']) {
            return Err(invalid(format!(
                "{scheme}:// URLs take no query or fragment"
            )));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let default_port = match kind {
            Kind::Cluster => CLUSTER_PORT,
            Kind::Sentinel => SENTINEL_PORT,
        };
        let addresses = host_list(hosts, default_port).map_err(&invalid)?;
        let credentials = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        match kind {
            Kind::Cluster => {
                if !matches!(path, "" | "0") {
                    return Err(invalid(format!(
                        "a Cluster has only database 0, so the URL takes no path (got /{path}); \
                         use {scheme}://host:port,host:port,..."
                    )));
                }
                let nodes = addresses
                    .iter()
                    .map(|address| format!("{server_scheme}://{credentials}{address}"))
                    .collect();
                Ok(Target::Cluster { nodes })
            }
            Kind::Sentinel => {
                let usage = format!("use {scheme}://host:port,host:port,.../<master-name>/<db>");
                let mut segments = path.split('/');
                let master = segments.next().unwrap_or_default();
                if master.is_empty() {
                    return Err(invalid(format!("the master name is missing; {usage}")));
                }
                let db = match segments.next() {
                    None | Some("") => "0",
                    Some(db) if db.parse::<u32>().is_ok() => db,
                    Some(db) => {
                        return Err(invalid(format!(
                            "the database must be a number, not {db:?}; {usage}"
                        )));
                    }
                };
                if segments.any(|s| !s.is_empty()) {
                    return Err(invalid(format!(
                        "too many path segments after the hosts; {usage}"
                    )));
                }
                let sentinels = addresses
                    .iter()
                    .map(|address| format!("{server_scheme}://{address}"))
                    .collect();
                Ok(Target::Sentinel {
                    sentinels,
                    master: master.to_owned(),
                    master_settings: format!("{server_scheme}://{credentials}localhost/{db}"),
                })
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Cluster,
    Sentinel,
}

/// `host:port,host:port,...` as `host:port` strings, with the default port filled in.
fn host_list(hosts: &str, default_port: u16) -> Result<Vec<String>, String> {
    if hosts.is_empty() {
        return Err("no host is given; list at least one host:port".to_owned());
    }
    hosts
        .split(',')
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.trim();
            let (host, port) = split_host_port(entry)
                .ok_or_else(|| format!("host {} ({entry:?}) is not host[:port]", i + 1))?;
            let port =
                match port {
                    None => default_port,
                    Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(
                        || {
                            format!(
                                "host {} ({entry:?}): the port must be a number from 1 to 65535",
                                i + 1
                            )
                        },
                    )?,
                };
            Ok(format!("{host}:{port}"))
        })
        .collect()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the host is missing.
fn split_host_port(entry: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let end = v6.find(']')?;
        let after = &v6[end + 1..];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (&entry[..end + 2], port)
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (!bare.is_empty() && !bare.contains(['@', '/', ' '])).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match Target::parse(url) {
            Err(Error::InvalidUrl(reason)) => reason,
            other => panic!("{url}: expected an invalid-URL error, got {other:?}"),
        }
    }

    #[test]
    fn single_server_urls_are_left_to_the_redis_crate() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://:pw@h/2",
            "unix:///tmp/r.sock",
        ] {
            assert_eq!(
                Target::parse(url).unwrap(),
                Target::Standalone(url.to_owned())
            );
        }
    }

    #[test]
    fn cluster_urls_list_their_seed_nodes_with_credentials() {
        let target = Target::parse("rediss+cluster://u:p%40w@a:7000,b,[::1]:7002").unwrap();
        assert_eq!(
            target,
            Target::Cluster {
                nodes: vec![
                    "rediss://u:p%40w@a:7000".to_owned(),
                    "rediss://u:p%40w@b:6379".to_owned(),
                    "rediss://u:p%40w@[::1]:7002".to_owned(),
                ]
            }
        );
    }

    #[test]
    fn sentinel_urls_name_the_master_and_database() {
        let target = Target::parse("redis+sentinel://:pw@s1:26380,s2/mymaster/3").unwrap();
        assert_eq!(
            target,
            Target::Sentinel {
                sentinels: vec!["redis://s1:26380".to_owned(), "redis://s2:26379".to_owned()],
                master: "mymaster".to_owned(),
                master_settings: "redis://:pw@localhost/3".to_owned(),
            }
        );
        let Target::Sentinel {
            master_settings, ..
        } = Target::parse("redis+sentinel://s1/mymaster").unwrap()
        else {
            panic!("not a sentinel target");
        };
        assert_eq!(master_settings, "redis://localhost/0");
    }

    #[test]
    fn malformed_multi_host_urls_say_what_is_wrong() {
        assert!(reason("redis+sentinel://s1:26379").contains("master name is missing"));
        assert!(reason("redis+sentinel://s1:26379/").contains("master name is missing"));
        assert!(reason("redis+sentinel://s1/m/zero").contains("database must be a number"));
        assert!(reason("redis+sentinel://s1/m/0/extra").contains("too many path segments"));
        assert!(reason("redis+cluster://").contains("no host"));
        assert!(reason("redis+cluster://a:7000,,b").contains("host 2"));
        assert!(reason("redis+cluster://a:notaport").contains("port must be a number"));
        assert!(reason("redis+cluster://a:0").contains("port must be a number"));
        assert!(reason("redis+cluster://a:70000").contains("port must be a number"));
        assert!(reason("redis+cluster://a:7000/2").contains("only database 0"));
        assert!(reason("redis+cluster://a?x=1").contains("no query"));
        assert!(reason("redis+cluster://[::1:7000").contains("host 1"));
    }
}
