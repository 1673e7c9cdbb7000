//! Keyed hashing and masking. Raw values go in; only keyed hashes and masks come out.
//!
//! The key is the operator's: from `PHIWATCH_KEY` (hex), a key file, or a generated
//! default kept outside the output folder with mode 0600. `key_id` is a short
//! fingerprint of the key so hashes made under different keys are never mixed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Environment variable holding the HMAC key as hex.
pub const KEY_ENV: &str = "PHIWATCH_KEY";

/// Errors loading or creating a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key text is not hex, or too short.
    #[error("{origin}: key must be at least 16 bytes written as hex")]
    BadKey {
        /// Where the key came from (env variable name or file path).
        origin: String,
    },
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No place to keep a generated key.
    #[error(
        "no key configured and no home directory to keep a generated one; set {KEY_ENV} or key_file"
    )]
    NoHome,
}

/// An HMAC key with its fingerprint.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
    id: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where [`Key::load`] found its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// From the `PHIWATCH_KEY` environment variable.
    Env,
    /// From a configured key file.
    File(PathBuf),
    /// Generated (now or earlier) at the default location.
    Generated(PathBuf),
}

impl Key {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Key {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(bytes)
            .unwrap_or_else(|_| unreachable!("hmac takes keys of any length"));
        let mut fp = mac.clone();
        fp.update(b"phiwatch key id v1");
        let id = hex::encode(&fp.finalize().into_bytes()[..6]);
        Key { mac, id }
    }

    /// A key from hex text (at least 16 bytes).
    pub fn from_hex(text: &str, origin: &str) -> Result<Key, Error> {
        let bytes = hex::decode(text.trim()).map_err(|_| Error::BadKey {
            origin: origin.to_string(),
        })?;
        if bytes.len() < 16 {
            return Err(Error::BadKey {
                origin: origin.to_string(),
            });
        }
        Ok(Key::from_bytes(&bytes))
    }

    /// Load the operator's key: `PHIWATCH_KEY`, else `key_file`, else the default
    /// generated key file (created with mode 0600 when missing).
    pub fn load(key_file: Option<&Path>) -> Result<(Key, KeyOrigin), Error> {
        if let Ok(v) = std::env::var(KEY_ENV)
            && !v.trim().is_empty()
        {
            return Ok((Key::from_hex(&v, KEY_ENV)?, KeyOrigin::Env));
        }
        if let Some(path) = key_file {
            let key = read_key_file(path)?;
            return Ok((key, KeyOrigin::File(path.to_path_buf())));
        }
        let path = default_key_path().ok_or(Error::NoHome)?;
        if path.exists() {
            return Ok((read_key_file(&path)?, KeyOrigin::Generated(path)));
        }
        let key = generate_key_file(&path)?;
        Ok((key, KeyOrigin::Generated(path)))
    }

    /// Short fingerprint of the key (12 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Hex HMAC-SHA256 of a canonical value.
    pub fn hmac_hex(&self, canonical: &[u8]) -> String {
        let mut m = self.mac.clone();
        m.update(canonical);
        crate::text::hex(&m.finalize().into_bytes())
    }

    /// Keyed 64-bit hash of a value in a domain (`patient`, `record` ...), for
    /// distinct counting. Different domains never collide by construction.
    pub fn hash64(&self, domain: &str, canonical: &[u8]) -> u64 {
        let mut m = self.mac.clone();
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(canonical);
        let out = m.finalize().into_bytes();
        let mut b = [0u8; 8];
        b.copy_from_slice(&out[..8]);
        u64::from_le_bytes(b)
    }
}

fn read_key_file(path: &Path) -> Result<Key, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Key::from_hex(&text, &path.display().to_string())
}

/// The default location of a generated key: `$PHIWATCH_HOME/key`, else
/// `$XDG_CONFIG_HOME/phiwatch/key`, else `~/.config/phiwatch/key`.
pub fn default_key_path() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("PHIWATCH_HOME") {
        return Some(PathBuf::from(h).join("key"));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("phiwatch").join("key"));
    }
    std::env::var_os("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("phiwatch")
            .join("key")
    })
}

fn generate_key_file(path: &Path) -> Result<Key, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(hex::encode(bytes).as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    Ok(Key::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_depends_on_key() {
        let a = Key::from_bytes(b"0123456789abcdef");
        let b = Key::from_bytes(b"0123456789abcdeg");
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 12);
    }

    #[test]
    fn hmac_is_keyed_and_stable() {
        let a = Key::from_bytes(b"0123456789abcdef");
        let b = Key::from_bytes(b"fedcba9876543210");
        assert_eq!(a.hmac_hex(b"123456789"), a.hmac_hex(b"123456789"));
        assert_ne!(a.hmac_hex(b"123456789"), b.hmac_hex(b"123456789"));
        assert_eq!(a.hmac_hex(b"x").len(), 64);
    }

    #[test]
    fn hash64_separates_domains() {
        let a = Key::from_bytes(b"0123456789abcdef");
        assert_ne!(a.hash64("patient", b"1"), a.hash64("record", b"1"));
        assert_eq!(a.hash64("patient", b"1"), a.hash64("patient", b"1"));
    }

    #[test]
    fn short_or_bad_hex_is_rejected() {
        assert!(Key::from_hex("abcd", "t").is_err());
        assert!(Key::from_hex("zz", "t").is_err());
        assert!(Key::from_hex(&"ab".repeat(16), "t").is_ok());
    }

    #[test]
    fn generated_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("key");
        let k1 = generate_key_file(&path).expect("generate");
        let k2 = read_key_file(&path).expect("reload");
        assert_eq!(k1.id(), k2.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
