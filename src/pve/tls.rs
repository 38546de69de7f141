//! TLS trust for the client: system roots, an extra CA, or a pinned certificate
//! fingerprint (what PVE shows in its GUI). Never "verification off" without saying so.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// How the server's certificate is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// The system's root CAs (and `extra_ca` PEM, if given).
    Verify {
        /// An extra CA certificate, PEM text.
        extra_ca: Option<String>,
    },
    /// Exactly the certificate with this SHA-256 fingerprint (`AA:BB:...`).
    Pinned(String),
    /// No verification at all (`--insecure`; warned about on every run).
    Insecure,
}

/// SHA-256 fingerprint of a DER certificate as PVE prints it: `AA:BB:...`.
pub fn cert_fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Normalizes a fingerprint typed by a user (`aa:bb`, `AABB`, with or without `sha256:`).
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let hex: String =
        s.trim().trim_start_matches("sha256:").trim_start_matches("SHA256:").chars().filter(|c| *c != ':').collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| {
        hex.to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// What the custom verifier does with the server's certificate.
#[derive(Debug)]
enum Rule {
    /// Accept exactly this fingerprint; report what was presented otherwise.
    Pin(String),
    /// Accept anything (only behind an explicit `--insecure`).
    AcceptAny,
    /// Record the fingerprint and refuse (to show a user what to pin).
    Capture(Arc<std::sync::Mutex<Option<String>>>),
}

/// The verifier of pinned, insecure and capturing connections; signatures are still
/// checked with the crypto provider's algorithms.
#[derive(Debug)]
struct FingerprintVerifier {
    rule: Rule,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = cert_fingerprint(end_entity);
        match &self.rule {
            Rule::Pin(expected) if got == *expected => Ok(ServerCertVerified::assertion()),
            Rule::Pin(expected) => Err(rustls::Error::General(format!(
                "certificate fingerprint mismatch: the server presented {got}, but {expected} is pinned (if the server's certificate really changed, pin the new one with PVE_FINGERPRINT)"
            ))),
            Rule::AcceptAny => Ok(ServerCertVerified::assertion()),
            Rule::Capture(seen) => {
                if let Ok(mut s) = seen.lock() {
                    *s = Some(got);
                }
                Err(rustls::Error::General("fingerprint probe".into()))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config that trusts by `rule`.
fn custom_config(rule: Rule) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(FingerprintVerifier { rule, provider }))
        .with_no_client_auth())
}

/// Builds the rustls client config for a trust mode.
pub fn client_config(mode: &TlsMode) -> Result<rustls::ClientConfig, String> {
    match mode {
        TlsMode::Verify { extra_ca } => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if let Some(pem) = extra_ca {
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("PVE_CA: {e}"))?;
                if certs.is_empty() {
                    return Err("PVE_CA: no certificate found in the PEM file".into());
                }
                for c in certs {
                    roots.add(c).map_err(|e| format!("PVE_CA: {e}"))?;
                }
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Ok(rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth())
        }
        TlsMode::Pinned(fp) => {
            let expected = normalize_fingerprint(fp)
                .ok_or_else(|| format!("'{fp}' is not a SHA-256 fingerprint (expected 32 hex bytes like AA:BB:...)"))?;
            custom_config(Rule::Pin(expected))
        }
        TlsMode::Insecure => custom_config(Rule::AcceptAny),
    }
}

/// A client config whose verifier only records the server certificate's fingerprint.
pub(crate) fn capture_config(seen: Arc<std::sync::Mutex<Option<String>>>) -> Option<rustls::ClientConfig> {
    custom_config(Rule::Capture(seen)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalize() {
        let fp = "aa".repeat(32);
        assert_eq!(normalize_fingerprint(&fp).unwrap(), vec!["AA"; 32].join(":"));
        assert_eq!(
            normalize_fingerprint(&format!("sha256:{}", vec!["ab"; 32].join(":"))).unwrap(),
            vec!["AB"; 32].join(":")
        );
        assert!(normalize_fingerprint("AA:BB").is_none());
    }
}
