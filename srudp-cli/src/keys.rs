//! Key files: one line, the secret key in base32 (52 characters).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use srudp_proto::SecretKey;
use srudp_tokio::Keypair;

use crate::failure::Failure;

/// `srudp keygen`: a new key in `out` (never overwriting), mode 0600; the
/// public key on stdout.
pub(crate) fn keygen(out: &Path) -> Result<(), Failure> {
    let keypair = Keypair::generate_from_os();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .map_err(|e| Failure::msg(format!("cannot create key file {}: {e}", out.display())))?;
    writeln!(file, "{}", keypair.secret())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::msg(format!("cannot write key file {}: {e}", out.display())))?;
    println!("{}", keypair.public());
    Ok(())
}

/// Refuses a secret key file that its group or others may read or write,
/// as ssh does: a key others can read is no longer secret.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Failure::msg(format!("cannot read key file {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Failure::msg(format!(
            "key file {} is accessible by others (mode {:04o}): a secret key must be private; run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Failure> {
    Ok(())
}

/// The keypair in `path`, or a new one for this run.
pub(crate) fn load_or_generate(path: Option<&Path>) -> Result<Keypair, Failure> {
    let Some(path) = path else {
        return Ok(Keypair::generate_from_os());
    };
    check_private(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::msg(format!("cannot read key file {}: {e}", path.display())))?;
    let secret: SecretKey = text
        .trim()
        .parse()
        .map_err(|e| Failure::msg(format!("invalid key file {}: {e}", path.display())))?;
    Ok(Keypair::from_secret(secret))
}
