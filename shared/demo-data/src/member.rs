//! Members: the Patient, the Coverage(s) and, for dependents, the subscriber as a
//! RelatedPerson. The identity facts a sign-in step checks are returned as
//! [`DemoMember`].

use edi_fhir::ids::{self, MemberKey};
use fhir::ResourceType;
use serde_json::{Value, json};

use crate::DemoMember;
use crate::date::Date;
use crate::directory::{Organization, PAYER, SECONDARY_PAYER};
use crate::elements::{
    Code, concept, concept_text, meta, open_period, reference, reference_display, typed_identifier,
};
use crate::rng::Rng;
use fhir::systems::{
    ACT_CODE, COVERAGE_CLASS, COVERAGE_KIND_EXT, PLAN_MEMBER_ID, ROLE_CODE,
    SUBSCRIBER_RELATIONSHIP, V2_0203,
};

/// How the member relates to the subscriber who holds the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relationship {
    /// The member is the subscriber.
    Own,
    Child,
    Spouse,
}

/// The subscriber of a dependent's policy, published as a RelatedPerson.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub related_person_id: String,
    pub given: &'static str,
    pub family: String,
    pub gender: &'static str,
    pub member_id: String,
}

/// Everything generated about one member that claims refer back to.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Short readable key used in every id of this member's resources, e.g. `m001`.
    pub tag: String,
    pub index: usize,
    pub identity: DemoMember,
    pub gender: &'static str,
    pub street: String,
    pub city: &'static str,
    pub state: &'static str,
    pub relationship: Relationship,
    pub subscriber: Option<Subscriber>,
    pub coverage_id: String,
    /// For every fifth member: a second carrier's Coverage and the member id it is
    /// filed under there.
    pub secondary: Option<(String, String)>,
    pub medical_record_number: String,
}

const FEMALE_GIVEN: &[&str] = &[
    "Maria", "Aisha", "Emily", "Mei", "Sofia", "Grace", "Fatima", "Hannah", "Leah", "Nora",
];
const MALE_GIVEN: &[&str] = &[
    "James", "Luis", "Kwame", "Ethan", "Ravi", "Noah", "Samuel", "Tomas", "Omar", "Caleb",
];
const FAMILY: &[&str] = &[
    "Garcia", "Johnson", "Nguyen", "Okonkwo", "Patel", "Kowalski", "Smith", "Haddad", "Andersen",
    "Rivera", "Chen", "Brooks",
];
const STREETS: &[&str] = &[
    "Oak Street",
    "Birch Lane",
    "Summit Avenue",
    "Lake Road",
    "Cedar Court",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Columbus", "OH", "43215"),
    ("Dayton", "OH", "45402"),
    ("Cincinnati", "OH", "45202"),
    ("Toledo", "OH", "43604"),
    ("Akron", "OH", "44308"),
    ("Dublin", "OH", "43017"),
];

/// The employer whose groups the members belong to (the 834's sponsor).
pub(crate) const GROUP_NAME: &str = "Ohio Employers Alliance";

/// Coverage starts before the first generated claim so every claim is covered.
pub(crate) const COVERAGE_START: Date = Date::ymd(2019, 1, 1);

impl Relationship {
    /// A fixed pattern, not a draw, so that the default five members always include a
    /// child and a spouse dependent and a member with a second carrier.
    fn for_index(index: usize) -> Relationship {
        match index % 5 {
            1 => Relationship::Child,
            4 => Relationship::Spouse,
            _ => Relationship::Own,
        }
    }

    fn coverage_code(self) -> Code {
        match self {
            Relationship::Own => Code::new(SUBSCRIBER_RELATIONSHIP, "self", "Self"),
            Relationship::Child => Code::new(SUBSCRIBER_RELATIONSHIP, "child", "Child"),
            Relationship::Spouse => Code::new(SUBSCRIBER_RELATIONSHIP, "spouse", "Spouse"),
        }
    }
}

fn given_for(gender: &str, rng: &mut Rng) -> &'static str {
    let names = if gender == "female" {
        FEMALE_GIVEN
    } else {
        MALE_GIVEN
    };
    let name: &&'static str = rng.pick(names);
    name
}

fn birth_date(relationship: Relationship, rng: &mut Rng) -> Date {
    let year = match relationship {
        Relationship::Child => rng.range(2006, 2016),
        _ => rng.range(1950, 1998),
    };
    Date::ymd(year, 1, 1).plus(rng.range(0, 364))
}

fn subscriber_for(
    tag: &str,
    relationship: Relationship,
    family: &str,
    gender: &str,
    rng: &mut Rng,
) -> Option<Subscriber> {
    if relationship == Relationship::Own {
        return None;
    }
    // A spouse's subscriber has the other gender here; a child's parent is either.
    let sub_gender = match relationship {
        Relationship::Spouse if gender == "female" => "male",
        Relationship::Spouse => "female",
        _ => *rng.pick(&["female", "male"]),
    };
    Some(Subscriber {
        related_person_id: format!("relatedperson-{tag}"),
        given: given_for(sub_gender, rng),
        family: family.to_owned(),
        gender: sub_gender,
        member_id: format!("DH{}{}", rng.digits(4), rng.digits(5)),
    })
}

/// Draws one member. `index` is zero-based; ids use it one-based (`m001`).
pub(crate) fn member(index: usize, rng: &mut Rng) -> Member {
    let tag = format!("m{:03}", index + 1);
    let relationship = Relationship::for_index(index);
    let gender = *rng.pick(&["female", "male"]);
    let given = given_for(gender, rng);
    let family = *rng.pick(FAMILY);
    let (city, state, postal_code) = *rng.pick(CITIES);
    let street = format!("{} {}", rng.range(10, 9899), rng.pick(STREETS));
    let subscriber = subscriber_for(&tag, relationship, family, gender, rng);
    let member_id = format!("DH{:04}{}", index + 1, rng.digits(5));
    // In the demo's X12 every member is enrolled as the subscriber of their own
    // policy (they all have their own member id, which 5010 claims then send as the
    // subscriber), so the ids are the X12 path's subscriber ids.
    let key = MemberKey::Subscriber {
        member_id: &member_id,
    };
    let patient_id = ids::patient(crate::PAYER_ID, &key);
    let coverage_id = ids::coverage(crate::PAYER_ID, &key, "medical");
    let secondary = (index % 5 == 2).then(|| {
        let other_id = format!("LM{}", member_id.get(2..).unwrap_or_default());
        let key = MemberKey::Subscriber {
            member_id: &other_id,
        };
        (
            ids::coverage(SECONDARY_PAYER.payer_id, &key, "medical"),
            other_id.clone(),
        )
    });
    let identity = DemoMember {
        patient_id,
        member_id,
        family: family.to_owned(),
        given: given.to_owned(),
        birth_date: birth_date(relationship, rng).to_string(),
        email: format!(
            "{}.{}.{tag}@example.com",
            given.to_lowercase(),
            family.to_lowercase()
        ),
        postal_code: postal_code.to_owned(),
    };
    Member {
        medical_record_number: format!("MR{}", rng.digits(8)),
        secondary,
        coverage_id,
        tag,
        index,
        identity,
        gender,
        street,
        city,
        state,
        relationship,
        subscriber,
    }
}

impl Member {
    fn address(&self) -> Value {
        json!({
            "use": "home",
            "line": [self.street],
            "city": self.city,
            "state": self.state,
            "postalCode": self.identity.postal_code,
            "country": "US",
        })
    }

    pub(crate) fn phone(&self) -> String {
        format!("555-01{:02}", self.index % 100)
    }

    /// The employer group the member's policy belongs to.
    pub(crate) fn group_number(&self) -> String {
        format!("GRP{:05}", 1000 + self.index % 7)
    }

    /// The id the policy is filed under: the subscriber's member id for dependents.
    pub(crate) fn subscriber_id(&self) -> &str {
        self.subscriber
            .as_ref()
            .map_or(&self.identity.member_id, |s| &s.member_id)
    }

    /// Who holds the policy: the Patient, or the subscriber's RelatedPerson.
    fn policy_holder(&self) -> Value {
        match &self.subscriber {
            Some(s) => reference(ResourceType::RelatedPerson, &s.related_person_id),
            None => reference(ResourceType::Patient, &self.identity.patient_id),
        }
    }
}

fn member_identifier(member_id: &str) -> Value {
    typed_identifier(
        Code::new(V2_0203, "MB", "Member Number"),
        PLAN_MEMBER_ID,
        member_id,
    )
}

pub(crate) fn patient_resource(m: &Member, updated: &str) -> Value {
    let id = &m.identity;
    json!({
        "resourceType": "Patient",
        "id": id.patient_id,
        "meta": meta("C4BB-Patient", updated),
        "identifier": [member_identifier(&id.member_id)],
        "active": true,
        "name": [{ "use": "official", "family": id.family, "given": [id.given] }],
        "telecom": [
            { "system": "email", "value": id.email, "use": "home" },
            { "system": "phone", "value": m.phone(), "use": "home" },
        ],
        "gender": m.gender,
        "birthDate": id.birth_date,
        "address": [m.address()],
    })
}

pub(crate) fn related_person_resource(m: &Member, s: &Subscriber, updated: &str) -> Value {
    let role = match (m.relationship, s.gender) {
        (Relationship::Spouse, _) => Code::new(ROLE_CODE, "SPS", "spouse"),
        (_, "female") => Code::new(ROLE_CODE, "MTH", "mother"),
        _ => Code::new(ROLE_CODE, "FTH", "father"),
    };
    json!({
        "resourceType": "RelatedPerson",
        "id": s.related_person_id,
        "meta": meta("C4BB-RelatedPerson", updated),
        "identifier": [member_identifier(&s.member_id)],
        "active": true,
        "patient": reference(ResourceType::Patient, &m.identity.patient_id),
        "relationship": [concept(role)],
        "name": [{ "use": "official", "family": s.family, "given": [s.given] }],
        "telecom": [{ "system": "phone", "value": m.phone(), "use": "home" }],
        "gender": s.gender,
        "address": [m.address()],
    })
}

fn coverage_class(code: &'static str, display: &'static str, value: String, name: &str) -> Value {
    json!({ "type": concept(Code::new(COVERAGE_CLASS, code, display)), "value": value, "name": name })
}

/// A C4BB-Coverage with `payor`, filed under `member_id` (the carrier's own number).
fn coverage_resource(
    m: &Member,
    id: &str,
    payor: &Organization,
    member_id: &str,
    updated: &str,
) -> Value {
    let plan_code = format!("{}-PPO", payor.tin.get(5..).unwrap_or(payor.tin));
    let mut coverage = json!({
        "resourceType": "Coverage",
        "id": id,
        "meta": meta("C4BB-Coverage", updated),
        "extension": [{ "url": COVERAGE_KIND_EXT, "valueCode": "insurance" }],
        "identifier": [member_identifier(member_id)],
        "status": "active",
        "type": concept_text(Code::new(ACT_CODE, "HIP", "health insurance plan policy"), "Health insurance plan"),
        "policyHolder": m.policy_holder(),
        "subscriber": m.policy_holder(),
        "subscriberId": if payor.payer_id == PAYER.payer_id { m.subscriber_id() } else { member_id },
        "beneficiary": reference(ResourceType::Patient, &m.identity.patient_id),
        "relationship": concept(m.relationship.coverage_code()),
        "period": open_period(COVERAGE_START),
        "payor": [reference_display(ResourceType::Organization, &payor.id(), payor.name)],
        "class": [
            coverage_class("group", "Group", m.group_number(), GROUP_NAME),
            coverage_class("plan", "Plan", plan_code, &format!("{} PPO", payor.name)),
        ],
        "network": format!("{} PPO Network", payor.name),
    });
    if m.relationship != Relationship::Own {
        coverage["dependent"] = json!(if m.relationship == Relationship::Spouse {
            "01"
        } else {
            "02"
        });
    }
    coverage
}

/// The member's resources: Patient, then RelatedPerson (dependents), then Coverage(s).
pub(crate) fn resources(m: &Member, updated: &str) -> Vec<(ResourceType, String, Value)> {
    let mut out = vec![(
        ResourceType::Patient,
        m.identity.patient_id.clone(),
        patient_resource(m, updated),
    )];
    if let Some(s) = &m.subscriber {
        out.push((
            ResourceType::RelatedPerson,
            s.related_person_id.clone(),
            related_person_resource(m, s, updated),
        ));
    }
    out.push((
        ResourceType::Coverage,
        m.coverage_id.clone(),
        coverage_resource(m, &m.coverage_id, &PAYER, &m.identity.member_id, updated),
    ));
    if let Some((id, other_carrier_id)) = &m.secondary {
        out.push((
            ResourceType::Coverage,
            id.clone(),
            coverage_resource(m, id, &SECONDARY_PAYER, other_carrier_id, updated),
        ));
    }
    out
}
