//! The binding rules of a pull, as `_ostree_repo_verify_bindings` (`ostree-repo.c`;
//! `docs/ostree-formats.md` §8.5) applies them: a commit's `ostree.ref-binding` must contain
//! the ref it was pulled through, and a remote with a collection ID requires both bindings.

/// A commit refused by the binding checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The commit's `ostree.ref-binding` does not list the ref it was pulled through.
    #[error("commit {commit} is bound to refs {} and cannot be pulled as ref {requested_ref:?}", describe_refs(.bound_refs))]
    RefNotBound {
        /// The commit checksum (hex).
        commit: String,
        /// The ref that was requested.
        requested_ref: String,
        /// The refs the commit is bound to.
        bound_refs: Vec<String>,
    },
    /// The remote has a collection ID but the commit carries no `ostree.ref-binding`.
    #[error(
        "commit {commit} has no ref binding (ostree.ref-binding), which remote collection {collection_id:?} requires"
    )]
    MissingRefBinding {
        /// The commit checksum (hex).
        commit: String,
        /// The remote's collection ID.
        collection_id: String,
    },
    /// The remote has a collection ID but the commit carries no
    /// `ostree.collection-binding`.
    #[error(
        "commit {commit} has no collection binding (ostree.collection-binding), which remote collection {collection_id:?} requires"
    )]
    MissingCollectionBinding {
        /// The commit checksum (hex).
        commit: String,
        /// The remote's collection ID.
        collection_id: String,
    },
    /// The commit's collection binding names a different collection.
    #[error(
        "commit {commit} is bound to collection {bound:?} but the remote's collection is {collection_id:?}"
    )]
    CollectionMismatch {
        /// The commit checksum (hex).
        commit: String,
        /// The commit's `ostree.collection-binding`.
        bound: String,
        /// The remote's collection ID.
        collection_id: String,
    },
}

fn describe_refs(refs: &[String]) -> String {
    if refs.is_empty() {
        "(none)".to_owned()
    } else {
        refs.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The ref-binding half of [`check_bindings`].
///
/// - `bindings`: the commit's `ostree.ref-binding` (`None` when the key is absent).
/// - `requested_ref`: the ref the commit was pulled through (`None` when pulled by
///   checksum: nothing to match).
/// - `require_binding`: refuse commits without the key (libostree does when the remote
///   has a collection ID; pass that as `remote_collection_id`).
///
/// A present binding must contain `requested_ref`; an absent one is accepted unless
/// required.
pub fn check_ref_binding<S: AsRef<str>>(
    commit: &str,
    bindings: Option<&[S]>,
    requested_ref: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    let Some(bindings) = bindings else {
        return match remote_collection_id {
            None => Ok(()),
            Some(cid) => Err(BindingError::MissingRefBinding {
                commit: commit.to_owned(),
                collection_id: cid.to_owned(),
            }),
        };
    };
    if let Some(wanted) = requested_ref
        && !bindings.iter().any(|b| b.as_ref() == wanted)
    {
        return Err(BindingError::RefNotBound {
            commit: commit.to_owned(),
            requested_ref: wanted.to_owned(),
            bound_refs: bindings.iter().map(|b| b.as_ref().to_owned()).collect(),
        });
    }
    Ok(())
}

/// The collection-binding half of [`check_bindings`]: when the remote has a collection
/// ID, the commit's `ostree.collection-binding` must exist and equal it; without one,
/// anything is accepted.
pub fn check_collection_binding(
    commit: &str,
    collection_binding: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    let Some(cid) = remote_collection_id else {
        return Ok(());
    };
    match collection_binding {
        None => Err(BindingError::MissingCollectionBinding {
            commit: commit.to_owned(),
            collection_id: cid.to_owned(),
        }),
        Some(bound) if bound == cid => Ok(()),
        Some(bound) => Err(BindingError::CollectionMismatch {
            commit: commit.to_owned(),
            bound: bound.to_owned(),
            collection_id: cid.to_owned(),
        }),
    }
}

/// `_ostree_repo_verify_bindings`: ref binding first, then collection binding.
/// `commit` is the commit checksum (for messages).
pub fn check_bindings<S: AsRef<str>>(
    commit: &str,
    ref_bindings: Option<&[S]>,
    collection_binding: Option<&str>,
    requested_ref: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    check_ref_binding(commit, ref_bindings, requested_ref, remote_collection_id)?;
    check_collection_binding(commit, collection_binding, remote_collection_id)
}
