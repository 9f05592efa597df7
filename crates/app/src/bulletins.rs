//! The monthly bulletins approved by 住建's officials (PUB-1, interpretation 23): recorded on
//! the `bulletins` stream as the draft stood when approved, and read back as approved. See
//! `tousu_domain::bulletin_approval`.

use chrono::NaiveDate;
use tousu_domain::bulletin_approval::{BulletinCommand, BulletinState, DraftAnchor, STREAM};
use tousu_store::EventStore;

use crate::access::Principal;
use crate::engine::Written;
use crate::error::AppError;
use crate::ids::RequestId;
use crate::{App, ClientOutcome};

impl<S: EventStore + 'static> App<S> {
    /// The months approved so far.
    pub async fn approved_bulletins(&self) -> Result<BulletinState, AppError> {
        let (state, _) = self.engine.state::<BulletinState>(&self.bulletins, &crate::stream_name(STREAM)?).await?;
        Ok(state)
    }

    /// Interpretation 23: a 住建 official approves the bulletin of the month starting on
    /// `month`, `bulletin` being the draft as the read model computes it now and `anchor` the
    /// history anchor it was computed at. The request id repeated answers the first approval.
    pub async fn approve_bulletin(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        month: NaiveDate,
        bulletin: serde_json::Value,
        anchor: Option<DraftAnchor>,
        note: String,
    ) -> Result<Written, AppError> {
        // What the official asked for is the month and the note: the draft is the server's.
        let asked = (month.to_string(), note.clone());
        let command = BulletinCommand::Approve { month, bulletin, anchor, note };
        let allowed = (command.name(), command.permitted(principal.role));
        let stream = crate::stream_name(STREAM)?;
        let ClientOutcome { outcome, actor, .. } =
            self.client_command(&self.bulletins, &stream, principal, request_id, allowed, command, &asked).await?;
        if !outcome.written.replayed {
            tracing::info!(month = %month.format("%Y-%m"), person = %actor.person, "monthly bulletin approved");
        }
        Ok(outcome.written)
    }
}
