//! Integration tests: one binary (ripgrep's layout), each module a protocol or concern.
//! Every test starts its own gateway on ephemeral loopback ports in its own temporary folder.

mod support;

mod approval;
mod canto;
mod canto_review;
mod cli;
mod confluence;
mod confluence_attachments;
mod confluence_outbound;
mod contentstack;
mod contentstack_poll;
mod crash;
mod dropbox;
mod ftp;
mod opentext;
mod outbound;
mod pipeline;
mod security;
mod sftp;
mod sidecar;
mod webhook;
mod workflow;
