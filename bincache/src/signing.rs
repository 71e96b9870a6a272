//! Signed remote cache entries, in the minisign format.
//!
//! A profile's cache surface may name `trusted_keys` (minisign public keys, the `RW…` line of a
//! `.pub` file). Then a manifest is only believed when it carries a minisign signature by one of
//! them, made by a publisher holding the secret key (`SPARKWING_CACHE_SIGNING_KEY`). Teams make
//! and rotate keys with the `minisign` tool they know (`minisign -G -W`), or with
//! `sparkwing cache keygen`.

use std::fmt;

/// The public keys a cache surface trusts. Empty: entries are not signed and whoever can write
/// the bucket is trusted.
#[derive(Clone, Default)]
pub struct Trust {
    keys: Vec<(String, minisign_verify::PublicKey)>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

/// A key that is not a minisign public key.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{shown}` is not a minisign public key: expected the base64 line of a `minisign.pub` file (56 characters starting with `RW`)"
)]
pub struct BadPublicKey {
    shown: String,
}

impl Trust {
    /// No trusted keys: unsigned entries are accepted (see `docs/cache.md` for what that trusts).
    pub fn none() -> Trust {
        Trust::default()
    }

    /// Trust exactly these minisign public keys (base64, as in a `.pub` file's second line).
    pub fn from_keys<S: AsRef<str>>(keys: &[S]) -> Result<Trust, BadPublicKey> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let k = k.as_ref().trim();
            let pk = minisign_verify::PublicKey::from_base64(k).map_err(|_| BadPublicKey {
                shown: k
                    .chars()
                    .take(64)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
            })?;
            out.push((key_id_of_base64(k), pk));
        }
        Ok(Trust { keys: out })
    }

    /// Whether entries must be signed.
    pub fn requires_signatures(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether `public_key` (base64) is one of the trusted keys.
    pub fn trusts(&self, public_key: &str) -> bool {
        let id = key_id_of_base64(public_key.trim());
        self.keys.iter().any(|(k, _)| *k == id)
    }

    /// Checks `signature` (a `.minisig` text) over `payload`. `Err` is the reason, one line.
    pub fn verify(&self, payload: &[u8], signature: Option<&str>) -> Result<(), String> {
        if !self.requires_signatures() {
            return Ok(());
        }
        let Some(text) = signature else {
            return Err("it is not signed, and the cache surface names trusted_keys".into());
        };
        let sig = minisign_verify::Signature::decode(text)
            .map_err(|_| "its signature is not a minisign signature".to_string())?;
        let mut key_known = false;
        for (_, pk) in &self.keys {
            match pk.verify(payload, &sig, false) {
                Ok(()) => return Ok(()),
                Err(minisign_verify::Error::UnexpectedKeyId) => {}
                Err(_) => key_known = true,
            }
        }
        if key_known {
            Err("its signature does not verify with the trusted key that made it".into())
        } else {
            Err(format!(
                "it is signed by key {}, which is not among the cache surface's trusted_keys",
                signature_key_id(text).unwrap_or_else(|| "?".into())
            ))
        }
    }
}

/// A publisher's secret key.
pub struct Signer {
    secret: minisign::SecretKey,
    public_b64: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        write!(f, "Signer({})", self.key_id())
    }
}

/// A signing key that cannot be used. The message never contains the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSigningKey(String);

impl Signer {
    /// Reads a minisign secret key file's text (`untrusted comment: …` + base64 line). An
    /// encrypted key needs its password.
    pub fn from_secret_key_text(
        text: &str,
        password: Option<String>,
    ) -> Result<Signer, BadSigningKey> {
        let mut lines = text.trim().lines();
        let well_formed = lines
            .next()
            .is_some_and(|l| l.starts_with("untrusted comment:"))
            && lines.next().is_some_and(|l| !l.trim().is_empty());
        if !well_formed {
            return Err(BadSigningKey(
                "it is not a minisign secret key file (two lines: `untrusted comment: …` and the key)".into(),
            ));
        }
        let sk_box = minisign::SecretKeyBox::from_string(text.trim()).map_err(|_| {
            BadSigningKey("it is not a minisign secret key file (two lines: `untrusted comment: …` and the key)".into())
        })?;
        // Never `from_box(_, None)`: that would prompt for a password on the terminal.
        let secret = match minisign::SecretKey::from_unencrypted_box(sk_box.clone()) {
            Ok(k) => k,
            Err(_) => {
                let Some(pw) = password else {
                    return Err(BadSigningKey(
                        "it is encrypted (or corrupt) and no password is set".into(),
                    ));
                };
                minisign::SecretKey::from_box(sk_box, Some(pw)).map_err(|_| {
                    BadSigningKey("it is corrupt, or the password does not decrypt it".into())
                })?
            }
        };
        let public_b64 = minisign::PublicKey::from_secret_key(&secret)
            .map_err(|_| BadSigningKey("its public key cannot be derived".into()))?
            .to_base64();
        Ok(Signer { secret, public_b64 })
    }

    /// The matching public key, base64 (what `trusted_keys` lists).
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// The key id minisign shows (16 hex digits).
    pub fn key_id(&self) -> String {
        key_id_of_base64(&self.public_b64)
    }

    /// A `.minisig` text over `payload`, with `trusted` as its (signed) trusted comment.
    pub fn sign(&self, payload: &[u8], trusted: &str) -> Result<String, BadSigningKey> {
        minisign::sign(
            None,
            &self.secret,
            std::io::Cursor::new(payload),
            Some(trusted),
            Some("signature of a sparkwing pipeline binary manifest"),
        )
        .map(|b| b.into_string())
        .map_err(|_| BadSigningKey("signing failed".into()))
    }
}

/// A new unencrypted key pair: `(secret key file text, public key file text, public key base64)`.
pub fn generate_keypair() -> Result<(String, String, String), BadSigningKey> {
    let kp = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|_| BadSigningKey("key generation failed".into()))?;
    let public_b64 = kp.pk.to_base64();
    let id = key_id_of_base64(&public_b64);
    let secret = kp
        .sk
        .to_box(Some(&format!("sparkwing cache signing key {id}")))
        .map_err(|_| BadSigningKey("key encoding failed".into()))?
        .into_string();
    let public = kp
        .pk
        .to_box()
        .map_err(|_| BadSigningKey("key encoding failed".into()))?
        .into_string();
    Ok((secret, public, public_b64))
}

/// The key id minisign prints for a base64 public key (its key number, as hex).
fn key_id_of_base64(b64: &str) -> String {
    minisign::PublicKey::from_base64(b64)
        .map(|pk| id_hex(pk.keynum()))
        .unwrap_or_else(|_| b64.to_string())
}

/// The key id of a `.minisig` text's signature.
fn signature_key_id(text: &str) -> Option<String> {
    minisign::SignatureBox::from_string(text)
        .ok()
        .map(|sig| id_hex(sig.keynum()))
}

fn id_hex(le: &[u8]) -> String {
    le.iter().rev().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_key_verifies_and_nothing_else() {
        let (secret, public_file, public) = generate_keypair().unwrap();
        assert!(public_file.contains(&public));
        let signer = Signer::from_secret_key_text(&secret, None).unwrap();
        assert_eq!(signer.public_key(), public);
        assert_eq!(signer.key_id().len(), 16);
        let sig = signer.sign(b"payload", "sparkwing test").unwrap();
        let trust = Trust::from_keys(std::slice::from_ref(&public)).unwrap();
        assert!(trust.trusts(&public));
        trust.verify(b"payload", Some(&sig)).unwrap();
        let e = trust.verify(b"payl0ad", Some(&sig)).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let e = trust.verify(b"payload", None).unwrap_err();
        assert!(e.contains("not signed"), "{e}");

        let (_, _, other) = generate_keypair().unwrap();
        let foreign = Trust::from_keys(&[other]).unwrap();
        let e = foreign.verify(b"payload", Some(&sig)).unwrap_err();
        assert!(
            e.contains(&signer.key_id()) && e.contains("not among"),
            "{e}"
        );
        // Without trusted keys nothing is required.
        Trust::none().verify(b"anything", None).unwrap();
        // Debug output never shows the secret.
        assert!(!format!("{signer:?}").contains(secret.lines().nth(1).unwrap()));
    }

    #[test]
    fn bad_keys_are_named_errors() {
        let e = Trust::from_keys(&["RWnot-a-key"]).unwrap_err().to_string();
        assert!(
            e.contains("`RWnot-a-key` is not a minisign public key"),
            "{e}"
        );
        let e = Signer::from_secret_key_text("hello", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a minisign secret key"), "{e}");
    }
}
