//! The front door: what `GET /` shows a person or an operator who typed the server's bare
//! address. A small static page, rendered like the console's pages and under the same content
//! security policy, pointing at the console sign-in and the operators' endpoints. It reveals
//! nothing a visitor could not find by trying those paths.

use askama::Template;
use askama_web::WebTemplate;

use super::Nav;

#[derive(Template, WebTemplate)]
#[template(path = "console/front_door.html")]
pub(super) struct FrontDoor {
    nav: Option<Nav>,
}

pub(super) async fn front_door() -> FrontDoor {
    FrontDoor { nav: None }
}
