//! `--k8s FILE`: the output of `kubectl get pods,services,endpoints -A -o json`.
//!
//! Pod IPs name their workload (the Deployment behind a ReplicaSet, or the StatefulSet,
//! DaemonSet or Job that owns the pod); Service ClusterIPs name the Service; addresses
//! listed only in an Endpoints object (no pod of ours has them: selector-less or external
//! backends) name that Service on its ports.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not kubectl JSON output at line {line} column {column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: expected a `List` (kubectl get ... -o json), found kind `{kind}`")]
    NotAList { path: PathBuf, kind: String },
}

/// What a name in the cluster is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sName {
    pub name: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `Pod` (no owner) or `Service`.
    pub kind: String,
    pub namespace: String,
}

/// Address -> name maps read from one file.
#[derive(Clone, Debug, Default)]
pub struct K8sInventory {
    pub path: PathBuf,
    /// Pod IPs (host-network pods excluded: their IP is the node's).
    pub pods: HashMap<IpAddr, K8sName>,
    /// Service ClusterIPs.
    pub services: HashMap<IpAddr, K8sName>,
    /// Endpoints addresses that belong to no listed pod, with their ports.
    pub endpoints: HashMap<(IpAddr, u16), K8sName>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: serde_json::Value,
    #[serde(default)]
    status: serde_json::Value,
    #[serde(default)]
    subsets: Vec<Subset>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Vec<Owner>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Owner {
    kind: String,
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

#[derive(Deserialize)]
struct Subset {
    #[serde(default)]
    addresses: Vec<Address>,
    #[serde(default, rename = "notReadyAddresses")]
    not_ready: Vec<Address>,
    #[serde(default)]
    ports: Vec<Port>,
}

#[derive(Deserialize)]
struct Address {
    ip: String,
}

#[derive(Deserialize)]
struct Port {
    port: u16,
}

impl K8sInventory {
    pub fn load(path: &Path) -> Result<K8sInventory, K8sError> {
        let text = std::fs::read_to_string(path).map_err(|source| K8sError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<K8sInventory, K8sError> {
        let list: List = serde_json::from_str(text).map_err(|e| K8sError::Syntax {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: super::strip_location(&e.to_string()),
        })?;
        if list.kind != "List" {
            return Err(K8sError::NotAList {
                path: path.to_path_buf(),
                kind: list.kind,
            });
        }
        let mut inv = K8sInventory {
            path: path.to_path_buf(),
            ..Default::default()
        };
        let mut endpoint_items = Vec::new();
        for item in &list.items {
            match item.kind.as_str() {
                "Pod" => {
                    if item.spec.get("hostNetwork").and_then(|v| v.as_bool()) == Some(true) {
                        continue;
                    }
                    let owner = workload_of(&item.metadata);
                    for ip in pod_ips(&item.status) {
                        inv.pods.insert(ip, owner.clone());
                    }
                }
                "Service" => {
                    let name = K8sName {
                        name: item.metadata.name.clone(),
                        kind: "Service".into(),
                        namespace: item.metadata.namespace.clone(),
                    };
                    for ip in cluster_ips(&item.spec) {
                        inv.services.insert(ip, name.clone());
                    }
                }
                "Endpoints" => endpoint_items.push(item),
                _ => {}
            }
        }
        for item in endpoint_items {
            let name = K8sName {
                name: item.metadata.name.clone(),
                kind: "Service".into(),
                namespace: item.metadata.namespace.clone(),
            };
            for subset in &item.subsets {
                for addr in subset.addresses.iter().chain(&subset.not_ready) {
                    let Ok(ip) = addr.ip.parse::<IpAddr>() else {
                        continue;
                    };
                    if inv.pods.contains_key(&ip) {
                        continue;
                    }
                    for port in &subset.ports {
                        inv.endpoints.insert((ip, port.port), name.clone());
                    }
                }
            }
        }
        inv.qualify_clashing_names();
        Ok(inv)
    }

    /// Names are short (`orders`) unless two namespaces use the same one, then
    /// `orders.shop` and `orders.staging`, as a Service's DNS name would read.
    fn qualify_clashing_names(&mut self) {
        let mut namespaces: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        let all = self
            .pods
            .values()
            .chain(self.services.values())
            .chain(self.endpoints.values());
        for n in all {
            namespaces
                .entry(n.name.clone())
                .or_default()
                .insert(n.namespace.clone());
        }
        let qualify = |n: &mut K8sName| {
            if namespaces.get(&n.name).is_some_and(|s| s.len() > 1) {
                n.name = format!("{}.{}", n.name, n.namespace);
            }
        };
        self.pods.values_mut().for_each(qualify);
        self.services.values_mut().for_each(qualify);
        self.endpoints.values_mut().for_each(qualify);
    }

    /// The cluster's name for an endpoint: its pod's workload, the Service of a ClusterIP,
    /// or (for a server) the Service whose Endpoints list it.
    pub fn name_of(&self, ip: IpAddr, port: Option<u16>) -> Option<&K8sName> {
        self.pods
            .get(&ip)
            .or_else(|| self.services.get(&ip))
            .or_else(|| port.and_then(|p| self.endpoints.get(&(ip, p))))
    }
}

/// The workload a pod belongs to: a ReplicaSet's Deployment (its name without the
/// pod-template hash), or the StatefulSet, DaemonSet, Job or other controller itself.
fn workload_of(meta: &Meta) -> K8sName {
    let owner = meta
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.first());
    let (name, kind) = match owner {
        Some(o) if o.kind == "ReplicaSet" => {
            let hash = meta.labels.get("pod-template-hash");
            match o.name.rsplit_once('-') {
                Some((deployment, suffix))
                    if hash.is_none_or(|h| h == suffix) && !deployment.is_empty() =>
                {
                    (deployment.to_owned(), "Deployment".to_owned())
                }
                _ => (o.name.clone(), "ReplicaSet".to_owned()),
            }
        }
        Some(o) => (o.name.clone(), o.kind.clone()),
        None => (meta.name.clone(), "Pod".to_owned()),
    };
    K8sName {
        name,
        kind,
        namespace: meta.namespace.clone(),
    }
}

fn pod_ips(status: &serde_json::Value) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = status
        .get("podIPs")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("ip")?.as_str()?.parse().ok())
        .collect();
    if let Some(ip) = status
        .get("podIP")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

fn cluster_ips(spec: &serde_json::Value) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = spec
        .get("clusterIPs")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    // Headless services say "None", which does not parse and is skipped.
    if let Some(ip) = spec
        .get("clusterIP")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"kind":"Pod","metadata":{"name":"orders-5c9d7b8f4-x2k9p","namespace":"shop",
        "labels":{"pod-template-hash":"5c9d7b8f4"},
        "ownerReferences":[{"kind":"ReplicaSet","name":"orders-5c9d7b8f4","controller":true}]},
       "spec":{},"status":{"podIP":"10.1.0.5","podIPs":[{"ip":"10.1.0.5"},{"ip":"fd00::5"}]}},
      {"kind":"Pod","metadata":{"name":"inventory-0","namespace":"shop",
        "ownerReferences":[{"kind":"StatefulSet","name":"inventory","controller":true}]},
       "spec":{},"status":{"podIP":"10.1.0.6"}},
      {"kind":"Pod","metadata":{"name":"debug","namespace":"default"},"spec":{},"status":{"podIP":"10.1.0.7"}},
      {"kind":"Pod","metadata":{"name":"node-exporter-abcde","namespace":"mon",
        "ownerReferences":[{"kind":"DaemonSet","name":"node-exporter","controller":true}]},
       "spec":{"hostNetwork":true},"status":{"podIP":"192.168.1.10"}},
      {"kind":"Service","metadata":{"name":"orders","namespace":"shop"},
       "spec":{"clusterIP":"10.96.0.11","clusterIPs":["10.96.0.11"]}},
      {"kind":"Service","metadata":{"name":"headless","namespace":"shop"},"spec":{"clusterIP":"None"}},
      {"kind":"Endpoints","metadata":{"name":"legacy-db","namespace":"shop"},
       "subsets":[{"addresses":[{"ip":"10.20.0.9"},{"ip":"10.1.0.5"}],"ports":[{"port":5432}]}]}
    ]}"#;

    #[test]
    fn pods_name_their_workload_and_cluster_ips_their_service() {
        let inv = K8sInventory::parse(Path::new("k.json"), LIST).unwrap();
        let name = |ip: &str, port| {
            inv.name_of(ip.parse().unwrap(), port)
                .map(|n| (n.name.clone(), n.kind.clone()))
        };
        assert_eq!(
            name("10.1.0.5", None),
            Some(("orders".into(), "Deployment".into()))
        );
        assert_eq!(
            name("fd00::5", None),
            Some(("orders".into(), "Deployment".into()))
        );
        assert_eq!(
            name("10.1.0.6", None),
            Some(("inventory".into(), "StatefulSet".into()))
        );
        assert_eq!(name("10.1.0.7", None), Some(("debug".into(), "Pod".into())));
        assert_eq!(
            name("10.96.0.11", None),
            Some(("orders".into(), "Service".into()))
        );
        // Host-network pods carry the node's IP: not a name for it.
        assert_eq!(name("192.168.1.10", None), None);
        // An Endpoints-only address names the Service on its port only.
        assert_eq!(
            name("10.20.0.9", Some(5432)),
            Some(("legacy-db".into(), "Service".into()))
        );
        assert_eq!(name("10.20.0.9", Some(80)), None);
    }

    #[test]
    fn names_used_in_two_namespaces_are_qualified() {
        let text = r#"{"kind":"List","items":[
          {"kind":"Pod","metadata":{"name":"a","namespace":"shop","ownerReferences":[{"kind":"StatefulSet","name":"db"}]},"status":{"podIP":"10.0.0.1"}},
          {"kind":"Pod","metadata":{"name":"b","namespace":"staging","ownerReferences":[{"kind":"StatefulSet","name":"db"}]},"status":{"podIP":"10.0.0.2"}}]}"#;
        let inv = K8sInventory::parse(Path::new("k.json"), text).unwrap();
        assert_eq!(
            inv.name_of("10.0.0.1".parse().unwrap(), None).unwrap().name,
            "db.shop"
        );
        assert_eq!(
            inv.name_of("10.0.0.2".parse().unwrap(), None).unwrap().name,
            "db.staging"
        );
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let err = K8sInventory::parse(Path::new("k.json"), "{\"kind\": \"List\", \"items\": [}")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("k.json: not kubectl JSON output at line 1 column"),
            "{msg}"
        );
        let err = K8sInventory::parse(Path::new("k.json"), r#"{"kind":"Pod"}"#).unwrap_err();
        assert!(err.to_string().contains("found kind `Pod`"), "{err}");
    }
}
