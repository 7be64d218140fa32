//! Deskgate's connectors to identity providers.
//!
//! [`Connector`] is what the application calls to execute a granted recovery action with
//! Deskgate's own credentials; [`LdapConnector`] implements it for OpenLDAP (ppolicy) and
//! Active Directory. Secrets the connectors generate come back as [`GeneratedSecret`], which can
//! be read only deliberately and never prints.

pub mod connector;
pub mod ldap;
pub mod secret;

pub use connector::{Connector, ConnectorError, DirectoryContact, DirectoryEntry, Operation};
pub use ldap::LdapConnector;
pub use ldap::config::{BindPassword, DirectoryMode, LdapConfig, LdapConfigError, TlsMode};
pub use secret::{GENERATED_PASSWORD_LEN, GeneratedSecret, TemporaryAccessPass, generate_password};
