//! Secrets: read from the configuration without their value ever reaching an error
//! message, and the credentials the client sends ([`Credentials`]), which never print
//! a secret either.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use super::{ApiConfig, AuthKind, ConfigError};

/// Deserializes a secret without ever putting its value into an error message.
pub(super) fn secret_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    let v = Option::<String>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("must be a string (value not shown)"))?;
    Ok(v.filter(|s| !s.is_empty()).map(SecretString::from))
}

/// Credentials as the client sends them.
#[derive(Clone)]
pub enum Credentials {
    Basic {
        login: String,
        password: SecretString,
    },
    Bearer {
        token: SecretString,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { login, .. } => f
                .debug_struct("Basic")
                .field("login", login)
                .field("password", &"[REDACTED]")
                .finish(),
            Credentials::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"[REDACTED]")
                .finish(),
        }
    }
}

impl Credentials {
    /// The value of the `Authorization` header.
    pub fn header_value(&self) -> SecretString {
        use base64::Engine;
        match self {
            Credentials::Basic { login, password } => {
                let raw = format!("{login}:{}", password.expose_secret());
                SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::Bearer { token } => {
                SecretString::from(format!("Bearer {}", token.expose_secret()))
            }
        }
    }
}

impl ApiConfig {
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        match self.auth {
            AuthKind::Basic => match (&self.login, &self.password) {
                (Some(login), Some(password)) if !login.is_empty() => Ok(Credentials::Basic {
                    login: login.clone(),
                    password: password.clone(),
                }),
                _ => Err(ConfigError::Invalid(
                    "api: login and password are required for basic auth \
                     (set api.login/api.password or DATAFORSEO_LOGIN/DATAFORSEO_PASSWORD)"
                        .into(),
                )),
            },
            AuthKind::Bearer => match &self.token {
                Some(token) => Ok(Credentials::Bearer {
                    token: token.clone(),
                }),
                None => Err(ConfigError::Invalid(
                    "api: token is required for bearer auth (set api.token or DATAFORSEO_TOKEN)"
                        .into(),
                )),
            },
        }
    }
}
