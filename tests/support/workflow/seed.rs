//! The emulator's starting state: the tenant, its one OAuth client, the token lifetime and the
//! process definitions (each a key and the user tasks an instance walks through in order).
//! `Seed::default()` is the demo seed (also in `deploy/workflow-emulator.seed.json`).

use serde::{Deserialize, Serialize};

/// Everything the emulator starts with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    /// Tenant id (`/tenants/{tenant}/oauth2/token`).
    pub tenant: String,
    /// The OAuth client allowed to call the API.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Access-token lifetime in seconds (`expires_in`).
    pub token_ttl_secs: u64,
    /// Deployed process definitions.
    pub definitions: Vec<SeedDefinition>,
}

/// One deployed process definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedDefinition {
    /// `processDefinitionKey`, e.g. `approval`.
    pub key: String,
    /// Display name (`processDefinitionName`).
    pub name: String,
    /// User tasks, in the order an instance reaches them; the instance ends after the last.
    pub tasks: Vec<String>,
}

impl Default for SeedDefinition {
    fn default() -> Self {
        Self { key: String::new(), name: String::new(), tasks: vec!["review".into()] }
    }
}

impl Default for Seed {
    fn default() -> Self {
        let def = |key: &str, name: &str, tasks: &[&str]| SeedDefinition {
            key: key.into(),
            name: name.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        };
        Self {
            tenant: "wharf-demo-tenant".into(),
            client_id: "wharf-demo-client".into(),
            client_secret: "wharf-demo-client-secret".into(),
            token_ttl_secs: 3600,
            definitions: vec![
                def("approval", "Asset approval", &["review"]),
                def("rights_review", "Rights expiry review", &["review"]),
                def("localisation", "Localisation", &["translate", "check"]),
            ],
        }
    }
}

impl Seed {
    /// Reads a JSON seed file.
    ///
    /// # Errors
    /// The file is unreadable or not a seed.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Seed> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    }
}
