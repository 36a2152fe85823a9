//! Where `srudp receive` writes: only below the `--out` folder, never
//! through a symbolic link (each folder on the way is checked with
//! `symlink_metadata`, files are opened with `O_NOFOLLOW`), partial files
//! beside their final names until their checksum matched.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{RelativePath, PARTIAL_SUFFIX};
use super::source_tree::hash_prefix;
use crate::failure::Failure;

/// The receiving folder.
pub(crate) struct Destination {
    root: PathBuf,
}

/// What a receiver already holds of a file: its first `have` bytes, whose
/// SHA-256 the sender checks before it skips them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) have: u64,
    /// The final file is there and matches: nothing to write.
    pub(crate) complete: bool,
    pub(crate) prefix_sha256: [u8; 32],
}

fn refused(path: &Path, what: &str) -> Failure {
    Failure::msg(format!(
        "refused: {} {what} (a link is never followed, nothing is written outside --out)",
        path.display()
    ))
}

impl Destination {
    /// The folder `root`, created if missing.
    pub(crate) fn open(root: &Path) -> Result<Destination, Failure> {
        std::fs::create_dir_all(root)
            .map_err(|e| Failure::msg(format!("cannot create {}: {e}", root.display())))?;
        Ok(Destination {
            root: root.to_path_buf(),
        })
    }

    /// Makes the folder `path` (and those above it) below the root; each
    /// one that exists must be a real folder, not a link to one.
    pub(crate) fn make_folder(&self, path: &[String]) -> Result<PathBuf, Failure> {
        let mut here = self.root.clone();
        for c in path {
            here.push(c);
            match std::fs::symlink_metadata(&here) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(refused(&here, "exists here and is not a folder")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&here).map_err(|e| {
                        Failure::msg(format!("cannot create {}: {e}", here.display()))
                    })?;
                }
                Err(e) => return Err(Failure::msg(format!("cannot read {}: {e}", here.display()))),
            }
        }
        Ok(here)
    }

    fn final_and_partial(&self, path: &RelativePath) -> Result<(PathBuf, PathBuf), Failure> {
        let (name, parents) = path
            .components()
            .split_last()
            .ok_or_else(|| Failure::msg("refused: an empty path"))?;
        let folder = self.make_folder(parents)?;
        Ok((
            folder.join(name),
            folder.join(format!("{name}{PARTIAL_SUFFIX}")),
        ))
    }

    /// What we hold of `path` already: all of it when the final file
    /// matches, else the partial file's bytes (at most `size`).
    pub(crate) fn held(
        &self,
        path: &RelativePath,
        size: u64,
        sha256: &[u8; 32],
    ) -> Result<Held, Failure> {
        let (target, partial) = self.final_and_partial(path)?;
        let io =
            |p: &Path, e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", p.display()));
        if let Some(meta) = regular_file_or_absent(&target)? {
            if meta.len() == size {
                let mut file = open_no_follow(&target, false).map_err(|e| io(&target, e))?;
                let whole = hash_prefix(&mut file, size).map_err(|e| io(&target, e))?;
                if &whole == sha256 {
                    return Ok(Held {
                        have: size,
                        complete: true,
                        prefix_sha256: whole,
                    });
                }
            }
        }
        let Some(meta) = regular_file_or_absent(&partial)? else {
            return Ok(Held {
                have: 0,
                complete: false,
                prefix_sha256: Sha256::digest([]).into(),
            });
        };
        let have = meta.len().min(size);
        let mut file = open_no_follow(&partial, false).map_err(|e| io(&partial, e))?;
        let prefix_sha256 = hash_prefix(&mut file, have).map_err(|e| io(&partial, e))?;
        Ok(Held {
            have,
            complete: false,
            prefix_sha256,
        })
    }

    /// The partial file of `path`, keeping its first `keep` bytes, positioned
    /// after them, with the hash of those bytes; `None` when the final
    /// file is already complete (`keep` is its whole size and it matched).
    pub(crate) fn partial(
        &self,
        path: &RelativePath,
        keep: u64,
        complete: bool,
    ) -> Result<Option<(File, Sha256, PathBuf, PathBuf)>, Failure> {
        let (target, partial) = self.final_and_partial(path)?;
        if complete {
            return Ok(None);
        }
        regular_file_or_absent(&partial)?;
        let io =
            |e: std::io::Error| Failure::msg(format!("cannot write {}: {e}", partial.display()));
        let mut file = open_no_follow(&partial, true).map_err(io)?;
        file.set_len(keep).map_err(io)?;
        let mut hash = Sha256::new();
        if keep > 0 {
            let mut buf = vec![0u8; 256 << 10];
            let mut left = keep;
            use std::io::Read;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want]).map_err(io)?;
                if n == 0 {
                    return Err(Failure::msg(format!("{} shrank", partial.display())));
                }
                hash.update(&buf[..n]);
                left -= n as u64;
            }
        }
        file.seek(SeekFrom::Start(keep)).map_err(io)?;
        Ok(Some((file, hash, partial, target)))
    }
}

/// `Some(metadata)` for a regular file, `None` if nothing is there; a link,
/// folder or device there is refused.
fn regular_file_or_absent(path: &Path) -> Result<Option<std::fs::Metadata>, Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(Some(meta)),
        Ok(_) => Err(refused(path, "exists here and is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::msg(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Opens without following a link in the last component (the folders
/// above were checked); `write` creates it if missing, mode 0644.
fn open_no_follow(path: &Path, write: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NOFOLLOW);
    if write {
        options.write(true).create(true).truncate(false).mode(0o644);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(s: &[&str]) -> RelativePath {
        RelativePath::new(s.iter().map(|c| c.to_string()).collect()).unwrap()
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("srudp-dest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_link_in_the_destination_is_never_followed() {
        let dir = temp("link");
        let outside = dir.join("outside");
        std::fs::create_dir(&outside).unwrap();
        let out = dir.join("out");
        let dest = Destination::open(&out).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), out.join("f")).unwrap();
        let e = dest.held(&rel(&["evil", "x"]), 3, &[0; 32]).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
        let e = dest.held(&rel(&["f"]), 3, &[0; 32]).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_partial_file_is_held_and_kept_up_to_what_matched() {
        let dir = temp("partial");
        let dest = Destination::open(&dir).unwrap();
        std::fs::create_dir(dir.join("d")).unwrap();
        std::fs::write(dir.join("d/f.srudp-partial"), b"hello wor").unwrap();
        let held = dest.held(&rel(&["d", "f"]), 5, &[0; 32]).unwrap();
        assert_eq!(held.have, 5, "never more than the announced size");
        assert_eq!(
            held.prefix_sha256,
            <[u8; 32]>::from(Sha256::digest(b"hello"))
        );
        let (file, hash, partial, _) = dest.partial(&rel(&["d", "f"]), 5, false).unwrap().unwrap();
        drop(file);
        assert_eq!(std::fs::read(&partial).unwrap(), b"hello");
        assert_eq!(<[u8; 32]>::from(hash.finalize()), held.prefix_sha256);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
