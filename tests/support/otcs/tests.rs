//! OpenText emulator tests.
