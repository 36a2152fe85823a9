//! What `srudp send PATH...` offers: the named files, and the folders with
//! everything inside, hashed before anything is announced.

use std::fs::Metadata;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Manifest, RelativePath};
use crate::failure::Failure;

/// The manifest and, for each of its files in order, where it is here.
pub(crate) struct SourceTree {
    pub(crate) manifest: Manifest,
    pub(crate) files: Vec<PathBuf>,
}

impl SourceTree {
    /// Walks `paths`: a file under its own name, a folder under its name
    /// with everything inside. Symbolic links and special files inside a
    /// folder are skipped (with a line on stderr); a named path is followed.
    pub(crate) fn walk(paths: &[PathBuf]) -> Result<SourceTree, Failure> {
        let mut tree = SourceTree {
            manifest: Manifest::default(),
            files: Vec::new(),
        };
        for path in paths {
            let meta = std::fs::metadata(path)
                .map_err(|e| Failure::msg(format!("cannot read {}: {e}", path.display())))?;
            let name = path
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_owned()))
                .and_then(|n| n.into_string().ok())
                .ok_or_else(|| Failure::msg(format!("{}: unusable name", path.display())))?;
            tree.add(path, vec![name], &meta)?;
        }
        Ok(tree)
    }

    fn add(
        &mut self,
        here: &Path,
        components: Vec<String>,
        meta: &Metadata,
    ) -> Result<(), Failure> {
        let shown = components.join("/");
        let rel = RelativePath::new(components.clone())
            .map_err(|e| Failure::msg(format!("cannot send {shown:?}: {e}")))?;
        if meta.is_file() {
            let sha256 = hash_file(here)?;
            self.manifest.entries.push(Entry::File {
                path: rel,
                size: meta.len(),
                sha256,
            });
            self.files.push(here.to_path_buf());
            return Ok(());
        }
        if !meta.is_dir() {
            eprintln!("skipping {}: not a file or folder", here.display());
            return Ok(());
        }
        self.manifest.entries.push(Entry::Folder(rel));
        let read = |e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", here.display()));
        let mut children: Vec<_> = std::fs::read_dir(here)
            .map_err(read)?
            .collect::<Result<_, _>>()
            .map_err(read)?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let path = child.path();
            let meta = std::fs::symlink_metadata(&path).map_err(read)?;
            if meta.file_type().is_symlink() {
                eprintln!("skipping {}: a symbolic link", path.display());
                continue;
            }
            let Ok(name) = child.file_name().into_string() else {
                return Err(Failure::msg(format!(
                    "cannot send {}: the name is not UTF-8",
                    path.display()
                )));
            };
            let mut sub = components.clone();
            sub.push(name);
            self.add(&path, sub, &meta)?;
        }
        Ok(())
    }
}

/// The SHA-256 of a whole file.
fn hash_file(path: &Path) -> Result<[u8; 32], Failure> {
    let fail = |e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(fail)?;
    hash_prefix(&mut file, u64::MAX).map_err(fail)
}

/// The SHA-256 of the first `len` bytes of `input` (all of it if shorter).
pub(crate) fn hash_prefix(input: &mut impl Read, len: u64) -> std::io::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = input.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hash.finalize().into())
}
