//! Reading the layers: the config file, the ecosystem's variables and
//! `LINKLEDGER_<SECTION>__<KEY>`, each read once into a [`Layer`] so that every problem
//! is found (a key found wrong is set aside and the rest read again) and named with the
//! file or the variable that set it.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Metadata, Profile, Provider};

use super::problems::{one_line, problem};
use super::{Config, ConfigError, DEFAULT_FILE};

impl Config {
    /// Loads the layers. `file` is `--config`; without it `LINKLEDGER_CONFIG`, else the
    /// default file if it exists.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (for tests). Every problem
    /// is reported, not only the first: one line each, `config: key: why (from
    /// where)`, naming the file or the environment variable that set the value.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let explicit = file
            .map(Path::to_path_buf)
            .or_else(|| lookup("LINKLEDGER_CONFIG").map(PathBuf::from));
        let mut problems = Vec::new();
        let mut layers = Vec::new();
        let path = match explicit {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Missing(path));
                }
                Some(path)
            }
            None => Path::new(DEFAULT_FILE)
                .exists()
                .then(|| PathBuf::from(DEFAULT_FILE)),
        };
        if let Some(path) = path {
            let toml = Toml::file(&path);
            match toml.data() {
                Ok(data) => layers.push(Layer {
                    metadata: toml.metadata(),
                    data,
                }),
                // The file's other settings cannot be read; the environment's still are.
                Err(e) => problems.push(format!(
                    "config: {}: {}",
                    path.display(),
                    one_line(&e.kind.to_string())
                )),
            }
        }
        let conventional = [
            ("DATABASE_URL", "database.url"),
            ("DATAFORSEO_LOGIN", "api.login"),
            ("DATAFORSEO_PASSWORD", "api.password"),
            ("DATAFORSEO_TOKEN", "api.token"),
        ];
        for (var, key) in conventional {
            if let Some(value) = lookup(var) {
                layers.push(Layer::env(var, key, value)?);
            }
        }
        // The same mapping as figment's `Env::prefixed("LINKLEDGER_").split("__")`, built
        // from the given pairs so tests can pass their own environment.
        for (var, value) in &env {
            let Some(rest) = var
                .strip_prefix("LINKLEDGER_")
                .filter(|rest| rest.contains("__"))
            else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            layers.push(Layer::env(var, &key, value.clone())?);
        }
        // Serde stops at the first problem; each one found is set aside (its key taken
        // out of every layer) and the rest read again, until none is left.
        for _ in 0..100 {
            let fig = layers
                .iter()
                .fold(Figment::new(), |fig, layer| fig.merge(layer));
            // Every environment value is a string, exactly as written: a password
            // `00123` stays `00123`. Lossy extraction reads a string as a number or a
            // boolean only where the setting is one (`LINKLEDGER_API__MAX_IN_FLIGHT=10`).
            match fig.extract_lossy::<Config>() {
                Ok(config) if problems.is_empty() => return Ok(config),
                Ok(_) => break,
                Err(errors) => {
                    let mut set_aside = false;
                    for e in errors {
                        // An unknown key's path names the key itself.
                        let key = e.path.clone();
                        let from = layers
                            .iter()
                            .rev()
                            .find(|l| l.has(&key))
                            .map(|l| l.metadata.clone())
                            .or(e.metadata.clone());
                        problems.push(problem(&key, &e.kind, from.as_ref()));
                        for layer in &mut layers {
                            set_aside |= layer.remove(&key);
                        }
                    }
                    if !set_aside {
                        break;
                    }
                }
            }
        }
        problems.dedup();
        Err(ConfigError::Invalid(problems.join("\n")))
    }
}

/// One layer of the configuration (the file, or one environment variable), its data
/// read once so that a key found wrong can be taken out and the rest read again.
struct Layer {
    /// Names where its values come from: `TOML file config/linkledger.toml`,
    /// `environment variable LINKLEDGER_API__TIMEOUT`.
    metadata: Metadata,
    data: figment::value::Map<Profile, figment::value::Dict>,
}

impl Layer {
    /// One environment variable setting the dotted `key` (`api.max_in_flight`) to
    /// `value`, always a string; see the extraction in [`Config::load_from`].
    fn env(var: &str, key: &str, value: String) -> Result<Layer, ConfigError> {
        let data = Serialized::global(key, &value).data().map_err(|e| {
            ConfigError::Invalid(format!(
                "config: environment variable {var}: {}",
                e.kind.to_string().replace('`', "")
            ))
        })?;
        Ok(Layer {
            metadata: Metadata::named(format!("environment variable {var}")),
            data,
        })
    }

    /// The dictionary holding `key`'s last part, in every profile.
    fn parents<'a>(
        &'a mut self,
        key: &'a [String],
    ) -> impl Iterator<Item = &'a mut figment::value::Dict> + 'a {
        self.data.values_mut().filter_map(move |dict| {
            let (_, parents) = key.split_last()?;
            parents
                .iter()
                .try_fold(dict, |d, part| match d.get_mut(part) {
                    Some(figment::value::Value::Dict(_, inner)) => Some(inner),
                    _ => None,
                })
        })
    }

    fn has(&self, key: &[String]) -> bool {
        let Some((last, parents)) = key.split_last() else {
            return false;
        };
        self.data.values().any(|dict| {
            parents
                .iter()
                .try_fold(dict, |d, part| match d.get(part) {
                    Some(figment::value::Value::Dict(_, inner)) => Some(inner),
                    _ => None,
                })
                .is_some_and(|d| d.contains_key(last))
        })
    }

    /// Takes `key` out; `true` if it was there.
    fn remove(&mut self, key: &[String]) -> bool {
        let Some(last) = key.last().cloned() else {
            return false;
        };
        let mut removed = false;
        for dict in self.parents(key) {
            removed |= dict.remove(&last).is_some();
        }
        removed
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, figment::value::Dict>, figment::Error> {
        Ok(self.data.clone())
    }
}
