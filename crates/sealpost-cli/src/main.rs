//! `sealpost`: the one command for operators and scripts.
//!
//! `main` parses arguments, runs one command, and prints any error as a single line that says
//! what to do next; exit status 0 on success, 1 on any failure, 2 on a usage error. Commands
//! write their result to stdout only once they have fully succeeded.

#![forbid(unsafe_code)]

mod cmd;
mod error;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sealpost: open, self-hostable message encryption.
#[derive(Parser)]
#[command(name = "sealpost", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and manage tenants (organizations and their keys).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Protect a message: read RFC 5322 mail on stdin, write the wrapper mail to stdout.
    Encrypt(cmd::encrypt::Args),
    /// Print the readable header of a wrapper .eml, message.html or envelope as JSON.
    Inspect(cmd::inspect::Args),
    /// Recover the original message with the tenant's own private keys (compliance path).
    Decrypt(cmd::decrypt::Args),
    /// Run the key service (sign-in, rewrap, revocation, audit) over HTTP.
    Serve(cmd::serve::Args),
    /// Revoke a message: its recipients can no longer open it (calls the key service).
    Revoke(cmd::remote::MessageArgs),
    /// Print a message's audit trail as JSON (calls the key service).
    Audit(cmd::remote::MessageArgs),
    /// Key-service administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The passcode mails in the key service's outbox, with their delivery state.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The gateway's mail-flow rules: check a rules file, or try it on a message.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the mail gateway: an SMTP relay that applies the rules, encrypts and relays.
    Gateway(cmd::gateway::Args),
    /// The gateway's spool: list, retry or delete waiting mail.
    #[command(subcommand)]
    Queue(QueueCommand),
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Print the waiting mail as JSON: ids, recipients, attempts, last errors.
    List(cmd::gateway::ListArgs),
    /// Retry a message (or --all) now instead of at its next scheduled attempt.
    Retry(cmd::gateway::RetryArgs),
    /// Delete a message from the spool; it will not be delivered.
    Delete(cmd::gateway::DeleteArgs),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Report every error in a rules file, with line and column; exit 1 if there is any.
    Check(cmd::rules::CheckArgs),
    /// Show, per recipient, which rule matches a message, why, and what it would do.
    Test(cmd::rules::TestArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Tokens: admin (revocation, audit) and gateway (replies, transport decryption).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a tenant token (admin, or --role gateway for the mail gateway); it is printed
    /// once and stored only as a hash.
    Create(cmd::keyservice::TokenCreateArgs),
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List the newest mails.
    List(cmd::keyservice::OutboxArgs),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Make a tenant directory: license and signing key pairs and a settings file.
    Init(cmd::tenant_init::Args),
    /// Load a tenant directory into the key service's database (or update its keys).
    Add(cmd::keyservice::TenantAddArgs),
}

/// The tenant directory argument shared by several commands.
#[derive(clap::Args, Debug)]
pub struct TenantArg {
    /// Tenant directory made by `sealpost tenant init`.
    #[arg(long = "tenant", value_name = "DIR")]
    pub dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tenant(TenantCommand::Init(a)) => cmd::tenant_init::run(a),
        Command::Tenant(TenantCommand::Add(a)) => cmd::keyservice::tenant_add(a),
        Command::Serve(a) => cmd::serve::run_cmd(a),
        Command::Revoke(a) => cmd::remote::revoke(a),
        Command::Audit(a) => cmd::remote::audit(a),
        Command::Admin(AdminCommand::Token(TokenCommand::Create(a))) => {
            cmd::keyservice::token_create(a)
        }
        Command::Outbox(OutboxCommand::List(a)) => cmd::keyservice::outbox_list(a),
        Command::Encrypt(a) => cmd::encrypt::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Decrypt(a) => cmd::decrypt::run(a),
        Command::Rules(RulesCommand::Check(a)) => cmd::rules::check(a),
        Command::Rules(RulesCommand::Test(a)) => cmd::rules::test(a),
        Command::Gateway(a) => cmd::gateway::run_cmd(a),
        Command::Queue(QueueCommand::List(a)) => cmd::gateway::queue_list(a),
        Command::Queue(QueueCommand::Retry(a)) => cmd::gateway::queue_retry(a),
        Command::Queue(QueueCommand::Delete(a)) => cmd::gateway::queue_delete(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealpost: error: {e}");
            ExitCode::FAILURE
        }
    }
}
