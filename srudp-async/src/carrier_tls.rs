//! TLS around the stream carrier (spec §12.6), on rustls with the ring
//! provider: the client's configuration, and the server's identity
//! ([`CarrierTls`]).
//!
//! TLS here is camouflage, not security. The srudp datagrams inside are
//! already Noise-protected, and the server's static key — which the client
//! knows from the rendezvous address — is what authenticates the server.
//! So the client pins nothing and accepts any certificate (it still checks
//! that the server holds the certificate's key, as TLS requires, so the
//! session is a well-formed one); it sends SNI and ALPN like an HTTPS
//! client, which is what firewalls that let only TLS out look for.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The ALPN protocol the client offers and the server selects.
pub const CARRIER_ALPN: &[u8] = b"srudp/1";

/// The TLS server name (SNI) a client sends when the rendezvous host is an
/// IP address, which SNI cannot carry: a fixed name, so the ClientHello
/// looks like any other.
pub const IP_LITERAL_SERVER_NAME: &str = "rendezvous.srudp.invalid";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client's TLS configuration: any certificate, ALPN `srudp/1`.
pub(crate) fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = provider();
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![CARRIER_ALPN.to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// The TLS server name for `host_name` (the rendezvous host when it is a
/// name), or [`IP_LITERAL_SERVER_NAME`].
pub(crate) fn server_name(host_name: Option<&str>) -> ServerName<'static> {
    host_name
        .and_then(|h| ServerName::try_from(h.to_string()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .unwrap_or_else(|| ServerName::try_from(IP_LITERAL_SERVER_NAME).expect("a valid DNS name"))
}

/// Accepts every certificate; checks the handshake's signatures against
/// the certificate's key (see the module docs for why that is enough).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's TLS identity for its stream carrier (spec §12.6): a
/// certificate chain and its private key, from PEM files or generated at
/// start. Clients accept any certificate, so a self-signed one works; a
/// certificate from a public CA for the server's host name makes the
/// connection look like any HTTPS site to a firewall that inspects it.
#[cfg(feature = "tokio")]
#[derive(Clone)]
pub struct CarrierTls {
    pub(crate) config: Arc<rustls::ServerConfig>,
}

#[cfg(feature = "tokio")]
impl std::fmt::Debug for CarrierTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CarrierTls(..)")
    }
}

/// Why a TLS identity could not be loaded or made. One line each.
#[cfg(feature = "tokio")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CarrierTlsError {
    /// The certificate file has no PEM certificate, or cannot be read.
    #[error("TLS certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file has no PEM private key, or cannot be read.
    #[error("TLS key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (the key does not match the certificate, an
    /// unsupported key type).
    #[error("TLS certificate and key: {0}")]
    Refused(String),
    /// Generating a self-signed certificate failed.
    #[error("cannot generate a TLS certificate: {0}")]
    Generate(String),
}

#[cfg(feature = "tokio")]
impl CarrierTls {
    /// The certificate chain in `cert_pem` (leaf first) and the private key
    /// in `key_pem` (PKCS#8, PKCS#1 or SEC1), both PEM files.
    pub fn from_pem_files(
        cert_pem: &std::path::Path,
        key_pem: &std::path::Path,
    ) -> Result<CarrierTls, CarrierTlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        let certificate = |reason: String| CarrierTlsError::Certificate {
            path: cert_pem.display().to_string(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert_pem)
            .map_err(|e| certificate(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(certificate("no PEM certificate in it".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|e| CarrierTlsError::Key {
            path: key_pem.display().to_string(),
            reason: e.to_string(),
        })?;
        CarrierTls::from_der(chain, key)
    }

    /// A self-signed certificate for `names` (DNS names or IP addresses;
    /// at least one), made now with a new key.
    pub fn self_signed(names: &[String]) -> Result<CarrierTls, CarrierTlsError> {
        let names = if names.is_empty() {
            vec![IP_LITERAL_SERVER_NAME.to_string()]
        } else {
            names.to_vec()
        };
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| CarrierTlsError::Generate(e.to_string()))?;
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der());
        CarrierTls::from_der(vec![generated.cert.der().clone()], key.into())
    }

    fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<CarrierTls, CarrierTlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| CarrierTlsError::Refused(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| CarrierTlsError::Refused(e.to_string()))?;
        config.alpn_protocols = vec![CARRIER_ALPN.to_vec()];
        Ok(CarrierTls {
            config: Arc::new(config),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_is_sent_as_sni_and_an_ip_literal_gets_the_fixed_name() {
        assert_eq!(
            server_name(Some("rdv.example.org")),
            ServerName::try_from("rdv.example.org").unwrap()
        );
        for ip_or_none in [Some("192.0.2.1"), Some("2001:db8::1"), None] {
            assert_eq!(
                server_name(ip_or_none),
                ServerName::try_from(IP_LITERAL_SERVER_NAME).unwrap(),
                "{ip_or_none:?}"
            );
        }
    }
}
