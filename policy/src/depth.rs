//! The one nesting limit that every reader (tokenizer, word reader,
//! skipper, parser) and the walker count against: `$( )` in `$( )`,
//! `sh -c` in `eval`, functions calling functions. It sits below all of
//! them so that each can refuse deep input the same way, with the same
//! reason, without importing another.

/// Nesting beyond this ($( ) in $( ), sh -c in eval …) is refused rather
/// than followed, so hostile input cannot make the analysis deep.
pub(crate) const MAX_DEPTH: usize = 16;

pub(crate) fn too_deep() -> String {
    format!("nesting too deep (more than {MAX_DEPTH} levels of $( ), sh -c, eval or functions)")
}
