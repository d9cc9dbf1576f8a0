//! What a task step would really run, read as a shell reads it, and what in
//! it is dangerous. Pure: no I/O, no runtime.
