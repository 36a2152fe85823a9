//! The manifest `srudp send` announces first, and how a receiver reads it
//! as the hostile input it may be.
//!
//! On the stream (integers big-endian): the magic `srudp-f1`, the entry
//! count (u32), then per entry its kind (u8: 0 folder, 1 file), its path as
//! a component count (u16) and per component a length (u16) and UTF-8
//! bytes, and for a file its size (u64) and the SHA-256 of its bytes (32).
//! A path is relative: every component is non-empty, at most 255 bytes,
//! not `.` or `..`, with no `/` or NUL in it, and does not end in
//! `.srudp-partial` (our own temporary names). No two entries share a path.

use std::collections::HashSet;
use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The first bytes of a transfer.
pub(crate) const MAGIC: &[u8; 8] = b"srudp-f1";
/// At most this many entries.
pub(crate) const MAX_ENTRIES: u32 = 1 << 20;
/// At most this many components in a path.
const MAX_DEPTH: u16 = 64;
/// A component's longest length in bytes (the usual file system limit).
const MAX_COMPONENT: u16 = 255;
/// Suffix of the files a receiver writes before they are complete.
pub(crate) const PARTIAL_SUFFIX: &str = ".srudp-partial";

/// A path inside the transferred tree, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RelativePath(Vec<String>);

/// What is wrong with a path a sender announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathError {
    Empty,
    TooDeep,
    EmptyComponent,
    DotComponent(String),
    Slash(String),
    Nul(String),
    TooLong,
    NotUtf8,
    OurPartialName(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("an empty path"),
            PathError::TooDeep => write!(f, "a path deeper than {MAX_DEPTH} folders"),
            PathError::EmptyComponent => f.write_str("an empty name (an absolute path?)"),
            PathError::DotComponent(c) => write!(f, "a path through {c:?}"),
            PathError::Slash(c) => write!(f, "a name with '/' in it: {:?}", c),
            PathError::Nul(c) => write!(f, "a name with NUL in it: {:?}", c),
            PathError::TooLong => write!(f, "a name longer than {MAX_COMPONENT} bytes"),
            PathError::NotUtf8 => f.write_str("a name that is not UTF-8"),
            PathError::OurPartialName(c) => write!(f, "a name ending in {PARTIAL_SUFFIX}: {c:?}"),
        }
    }
}

impl RelativePath {
    /// Checks every component (see the module doc).
    pub(crate) fn new(components: Vec<String>) -> Result<RelativePath, PathError> {
        if components.is_empty() {
            return Err(PathError::Empty);
        }
        if components.len() > usize::from(MAX_DEPTH) {
            return Err(PathError::TooDeep);
        }
        for c in &components {
            if c.is_empty() {
                return Err(PathError::EmptyComponent);
            }
            if c == "." || c == ".." {
                return Err(PathError::DotComponent(c.clone()));
            }
            if c.contains('/') {
                return Err(PathError::Slash(c.clone()));
            }
            if c.contains('\0') {
                return Err(PathError::Nul(c.clone()));
            }
            if c.len() > usize::from(MAX_COMPONENT) {
                return Err(PathError::TooLong);
            }
            if c.ends_with(PARTIAL_SUFFIX) {
                return Err(PathError::OurPartialName(c.clone()));
            }
        }
        Ok(RelativePath(components))
    }

    pub(crate) fn components(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// One thing announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Folder(RelativePath),
    File {
        path: RelativePath,
        size: u64,
        sha256: [u8; 32],
    },
}

/// Everything announced, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) entries: Vec<Entry>,
}

/// Why a manifest is refused.
#[derive(Debug)]
pub(crate) enum ManifestError {
    Io(std::io::Error),
    NotATransfer,
    TooManyEntries(u32),
    UnknownKind(u8),
    Path(PathError),
    Duplicate(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Io(e) => write!(f, "transfer failed: {e}"),
            ManifestError::NotATransfer => {
                f.write_str("the sender does not speak srudp's file transfer")
            }
            ManifestError::TooManyEntries(n) => {
                write!(
                    f,
                    "the sender announced {n} entries (at most {MAX_ENTRIES})"
                )
            }
            ManifestError::UnknownKind(k) => write!(f, "the sender announced an entry of kind {k}"),
            ManifestError::Path(e) => write!(f, "refused: the sender announced {e}"),
            ManifestError::Duplicate(p) => write!(f, "refused: the sender announced {p:?} twice"),
        }
    }
}

impl Manifest {
    pub(crate) fn total_bytes(&self) -> u64 {
        self.files().map(|(_, size, _)| size).sum()
    }

    pub(crate) fn files(&self) -> impl Iterator<Item = (&RelativePath, u64, &[u8; 32])> {
        self.entries.iter().filter_map(|e| match e {
            Entry::File { path, size, sha256 } => Some((path, *size, sha256)),
            Entry::Folder(_) => None,
        })
    }

    /// The manifest's bytes on the stream.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for entry in &self.entries {
            let (kind, path) = match entry {
                Entry::Folder(p) => (0u8, p),
                Entry::File { path, .. } => (1u8, path),
            };
            out.push(kind);
            encode_components(&mut out, path.components());
            if let Entry::File { size, sha256, .. } = entry {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(sha256);
            }
        }
        out
    }

    /// Reads and validates a manifest; never trusts a length it has not
    /// bounded first.
    pub(crate) async fn read(
        input: &mut (impl AsyncRead + Unpin),
    ) -> Result<Manifest, ManifestError> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .await
            .map_err(ManifestError::Io)?;
        if &magic != MAGIC {
            return Err(ManifestError::NotATransfer);
        }
        let count = input.read_u32().await.map_err(ManifestError::Io)?;
        if count > MAX_ENTRIES {
            return Err(ManifestError::TooManyEntries(count));
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for _ in 0..count {
            let kind = input.read_u8().await.map_err(ManifestError::Io)?;
            if kind > 1 {
                return Err(ManifestError::UnknownKind(kind));
            }
            let path = read_path(input).await?;
            if !seen.insert(path.clone()) {
                return Err(ManifestError::Duplicate(path.to_string()));
            }
            entries.push(if kind == 0 {
                Entry::Folder(path)
            } else {
                let size = input.read_u64().await.map_err(ManifestError::Io)?;
                let mut sha256 = [0u8; 32];
                input
                    .read_exact(&mut sha256)
                    .await
                    .map_err(ManifestError::Io)?;
                Entry::File { path, size, sha256 }
            });
        }
        Ok(Manifest { entries })
    }
}

/// Components as they go on the stream, whether or not they are valid (a
/// test's hostile sender uses this too).
pub(crate) fn encode_components(out: &mut Vec<u8>, components: &[String]) {
    out.extend_from_slice(&(components.len() as u16).to_be_bytes());
    for c in components {
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(c.as_bytes());
    }
}

async fn read_path(input: &mut (impl AsyncRead + Unpin)) -> Result<RelativePath, ManifestError> {
    let depth = input.read_u16().await.map_err(ManifestError::Io)?;
    if depth > MAX_DEPTH {
        return Err(ManifestError::Path(PathError::TooDeep));
    }
    let mut components = Vec::with_capacity(usize::from(depth));
    for _ in 0..depth {
        let len = input.read_u16().await.map_err(ManifestError::Io)?;
        if len > MAX_COMPONENT {
            return Err(ManifestError::Path(PathError::TooLong));
        }
        let mut bytes = vec![0u8; usize::from(len)];
        input
            .read_exact(&mut bytes)
            .await
            .map_err(ManifestError::Io)?;
        let c = String::from_utf8(bytes).map_err(|_| ManifestError::Path(PathError::NotUtf8))?;
        components.push(c);
    }
    RelativePath::new(components).map_err(ManifestError::Path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Result<RelativePath, PathError> {
        RelativePath::new(s.iter().map(|c| c.to_string()).collect())
    }

    async fn parse(bytes: Vec<u8>) -> Result<Manifest, ManifestError> {
        Manifest::read(&mut bytes.as_slice()).await
    }

    fn one_file(components: &[&str]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_be_bytes());
        out.push(1);
        let components: Vec<String> = components.iter().map(|c| c.to_string()).collect();
        encode_components(&mut out, &components);
        out.extend_from_slice(&5u64.to_be_bytes());
        out.extend_from_slice(&[0u8; 32]);
        out
    }

    #[test]
    fn nested_and_non_ascii_paths_are_accepted() {
        let p = path(&["photos", "été", "日本.jpg"]).unwrap();
        assert_eq!(p.to_string(), "photos/été/日本.jpg");
    }

    #[test]
    fn paths_that_leave_the_tree_or_smuggle_separators_are_refused() {
        assert_eq!(path(&[]), Err(PathError::Empty));
        assert_eq!(
            path(&["a", ".."]),
            Err(PathError::DotComponent("..".into()))
        );
        assert_eq!(
            path(&["..", "x"]),
            Err(PathError::DotComponent("..".into()))
        );
        assert_eq!(path(&["."]), Err(PathError::DotComponent(".".into())));
        // An absolute path split at '/' starts with an empty name.
        assert_eq!(path(&["", "etc", "passwd"]), Err(PathError::EmptyComponent));
        assert_eq!(
            path(&["/etc/passwd"]),
            Err(PathError::Slash("/etc/passwd".into()))
        );
        assert_eq!(
            path(&["a/../../b"]),
            Err(PathError::Slash("a/../../b".into()))
        );
        assert_eq!(path(&["a\0b"]), Err(PathError::Nul("a\0b".into())));
        assert_eq!(path(&[&"x".repeat(256)]), Err(PathError::TooLong));
        assert!(matches!(
            path(&["f.srudp-partial"]),
            Err(PathError::OurPartialName(_))
        ));
    }

    #[tokio::test]
    async fn a_manifest_reads_back_what_was_encoded() {
        let manifest = Manifest {
            entries: vec![
                Entry::Folder(path(&["d"]).unwrap()),
                Entry::File {
                    path: path(&["d", "empty"]).unwrap(),
                    size: 0,
                    sha256: [7; 32],
                },
            ],
        };
        assert_eq!(parse(manifest.encode()).await.unwrap(), manifest);
        assert_eq!(manifest.total_bytes(), 0);
    }

    #[tokio::test]
    async fn hostile_manifests_are_refused_before_anything_is_written() {
        for bad in [
            &["..", "x"][..],
            &["", "etc", "passwd"],
            &["a\0b"],
            &["a/b"],
        ] {
            let e = parse(one_file(bad)).await.unwrap_err();
            assert!(matches!(e, ManifestError::Path(_)), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("refused:"), "{e}");
        }
        let mut twice = MAGIC.to_vec();
        twice.extend_from_slice(&2u32.to_be_bytes());
        for _ in 0..2 {
            twice.push(0);
            encode_components(&mut twice, &["d".to_string()]);
        }
        assert!(matches!(
            parse(twice).await,
            Err(ManifestError::Duplicate(_))
        ));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse(huge).await,
            Err(ManifestError::TooManyEntries(_))
        ));
        let mut deep = MAGIC.to_vec();
        deep.extend_from_slice(&1u32.to_be_bytes());
        deep.push(0);
        deep.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            parse(deep).await,
            Err(ManifestError::Path(PathError::TooDeep))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1".to_vec()).await,
            Err(ManifestError::NotATransfer)
        ));
        let mut truncated = one_file(&["a"]);
        truncated.truncate(truncated.len() - 3);
        assert!(matches!(parse(truncated).await, Err(ManifestError::Io(_))));
    }
}
