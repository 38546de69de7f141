//! The printable logins of a lab: one slip per student (name, login, password, the class
//! page's address), laid out for A4. Served to the lab's instructor at
//! `/labs/{lab}/logins` and written offline by `stand credentials LAB --html FILE`.

use minijinja::{Environment, context};

use crate::apply::Credential;

/// The page for `slips` (in the order given); `url` is the class page's address, when
/// known; `missing` counts the lab's students the credentials file has no password for.
pub fn logins_page(
    lab: &str,
    slips: &[Credential],
    url: Option<&str>,
    missing: usize,
) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("logins.html", include_str!("assets/logins.html"))?;
    env.get_template("logins.html")?.render(context! { lab, slips, url, missing })
}

/// The slips in the order of a class list: by name (surname first), then login. `ё` sorts
/// as `е`, as in Russian dictionaries (its code point comes after `я`).
pub fn by_name(mut slips: Vec<Credential>) -> Vec<Credential> {
    slips.sort_by(|a, b| {
        let key = |c: &Credential| c.name.clone().unwrap_or_else(|| c.user.clone()).to_lowercase().replace('ё', "е");
        key(a).cmp(&key(b)).then_with(|| a.user.cmp(&b.user))
    });
    slips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slip(user: &str, name: Option<&str>) -> Credential {
        Credential {
            user: user.into(),
            password: "p<w>&\"d".into(),
            node: "pve1".into(),
            vms: Vec::new(),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn slips_are_escaped_in_class_order_with_the_address() {
        let slips = by_name(vec![
            slip("b@pve", Some("Яковлев Иван")),
            slip("c@pve", Some("Ёлкин Артём")),
            slip("a@pve", Some("Андреева Ольга")),
        ]);
        let order: Vec<&str> = slips.iter().map(|s| s.user.as_str()).collect();
        assert_eq!(order, ["a@pve", "c@pve", "b@pve"]);
        let page = logins_page("lab3", &slips, Some("https://class.example:8443"), 0).unwrap();
        assert!(page.contains("Андреева Ольга") && page.contains("class.example:8443"));
        assert!(page.contains("p&lt;w&gt;&amp;&quot;d") && !page.contains("p<w>"), "passwords are escaped");
        assert!(page.find("Андреева").unwrap() < page.find("Яковлев").unwrap());
        let without = logins_page("lab3", &slips, None, 2).unwrap();
        assert!(!without.contains("Class page") && without.contains("2 of the lab"));
    }
}
