//! Provider webhooks. Each is verified before anything is believed, stored (accepted or
//! rejected, see `inbox`), and answered quickly.

pub(crate) mod bulk_reports;
pub(crate) mod flood;
pub(crate) mod mpesa;
pub(crate) mod stripe;
pub(crate) mod twilio;
pub(crate) mod vodacom;

use axum::Router;
use axum::routing::post;

use super::AppState;
pub use flood::FloodLimit;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/twilio/status", post(twilio::status))
        .route("/twilio/inbound", post(twilio::inbound))
        .route("/mpesa/{token}", post(mpesa::callback))
        .route("/stripe", post(stripe::event))
        .route("/vodacom/{token}", post(vodacom::result))
        .route("/beem/{token}", post(bulk_reports::beem))
        .route(
            "/africastalking/{token}",
            post(bulk_reports::africastalking),
        )
}
