//! Clinical scenarios the generator draws claims from.
//!
//! A scenario keeps codes that belong together (a diagnosis, the procedure that treats
//! it, the DRG it groups to and the lines a provider bills) so that every synthetic EOB
//! tells a coherent story. Codes are real code-system codes in the formats CARIN
//! expects (dotted ICD-10-CM, undotted ICD-10-PCS, 11-digit NDC); charges are typical
//! list prices, and NDC package codes are illustrative, not a formulary.

use crate::elements::Code;
use fhir::systems::{
    CDT, CPT, DATA_ABSENT_REASON, HCPCS, ICD10_CM, ICD10_PCS, MS_DRG, NDC, NUBC_REVENUE,
};

/// One billed line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub service: Code,
    pub revenue: Option<Code>,
    /// List charge for the whole line, in cents.
    pub charge: i64,
    pub units: i64,
    /// Universal tooth number for dental lines.
    pub tooth: Option<&'static str>,
    pub surfaces: &'static [&'static str],
    /// Preventive services carry no member cost sharing in network.
    pub preventive: bool,
}

impl Line {
    const fn new(service: Code, dollars: i64) -> Line {
        Line {
            service,
            revenue: None,
            charge: dollars * 100,
            units: 1,
            tooth: None,
            surfaces: &[],
            preventive: false,
        }
    }

    const fn rev(mut self, code: &'static str, display: &'static str) -> Line {
        self.revenue = Some(Code::new(NUBC_REVENUE, code, display));
        self
    }

    /// A service billed per unit: the charge is per unit, so it scales.
    const fn units(mut self, units: i64) -> Line {
        self.charge *= units;
        self.units = units;
        self
    }

    /// A dispensed quantity: the charge is for the whole fill and does not scale.
    const fn quantity(mut self, quantity: i64) -> Line {
        self.units = quantity;
        self
    }

    const fn tooth(mut self, tooth: &'static str, surfaces: &'static [&'static str]) -> Line {
        self.tooth = Some(tooth);
        self.surfaces = surfaces;
        self
    }

    const fn preventive(mut self) -> Line {
        self.preventive = true;
        self
    }
}

/// Pharmacy facts for a drug scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rx {
    pub days_supply: i64,
    pub quantity_unit: &'static str,
    pub brand: bool,
}

/// A coherent claim story: diagnoses (first = principal), procedures, DRG and lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub diagnoses: &'static [Code],
    pub procedures: &'static [Code],
    pub drg: Option<Code>,
    /// Nights in hospital for inpatient stays; 0 for same-day services.
    pub stay_nights: i64,
    pub lines: &'static [Line],
    pub rx: Option<Rx>,
}

impl Scenario {
    const fn visit(diagnoses: &'static [Code], lines: &'static [Line]) -> Scenario {
        Scenario {
            diagnoses,
            procedures: &[],
            drg: None,
            stay_nights: 0,
            lines,
            rx: None,
        }
    }

    const fn dispensed(
        lines: &'static [Line],
        days_supply: i64,
        quantity_unit: &'static str,
        brand: bool,
    ) -> Scenario {
        let rx = Some(Rx {
            days_supply,
            quantity_unit,
            brand,
        });
        Scenario {
            diagnoses: &[],
            procedures: &[],
            drg: None,
            stay_nights: 0,
            lines,
            rx,
        }
    }
}

const fn icd(code: &'static str, display: &'static str) -> Code {
    Code::new(ICD10_CM, code, display)
}
const fn pcs(code: &'static str, display: &'static str) -> Code {
    Code::new(ICD10_PCS, code, display)
}
const fn cpt(code: &'static str, display: &'static str) -> Code {
    Code::new(CPT, code, display)
}
const fn hcpcs(code: &'static str, display: &'static str) -> Code {
    Code::new(HCPCS, code, display)
}
const fn cdt(code: &'static str, display: &'static str) -> Code {
    Code::new(CDT, code, display)
}
const fn ndc(code: &'static str, display: &'static str) -> Code {
    Code::new(NDC, code, display)
}
const fn drg(code: &'static str, display: &'static str) -> Option<Code> {
    Some(Code::new(MS_DRG, code, display))
}

/// Inpatient room, pharmacy and supply lines carry no HCPCS code; CARIN asks for a
/// data-absent-reason in `productOrService` then (the revenue code carries the meaning).
const NOT_APPLICABLE: Code = Code::new(DATA_ABSENT_REASON, "not-applicable", "Not Applicable");

const ROOM_BOARD: Line =
    Line::new(NOT_APPLICABLE, 2400).rev("0120", "Room & Board - Semi-Private Two Bed - General");
const INPATIENT_PHARMACY: Line = Line::new(NOT_APPLICABLE, 650).rev("0250", "Pharmacy - General");
const INPATIENT_LAB: Line = Line::new(NOT_APPLICABLE, 420).rev("0300", "Laboratory - General");

pub(crate) const INPATIENT: &[Scenario] = &[
    Scenario {
        diagnoses: &[
            icd("K35.80", "Unspecified acute appendicitis"),
            icd("E86.0", "Dehydration"),
        ],
        procedures: &[pcs(
            "0DTJ4ZZ",
            "Resection of Appendix, Percutaneous Endoscopic Approach",
        )],
        drg: drg(
            "343",
            "Appendectomy without complicated principal diagnosis without CC/MCC",
        ),
        stay_nights: 2,
        lines: &[
            ROOM_BOARD.units(2),
            Line::new(cpt("44970", "Laparoscopy, surgical, appendectomy"), 8500)
                .rev("0360", "Operating Room Services - General"),
            Line::new(NOT_APPLICABLE, 1900).rev("0370", "Anesthesia - General"),
            INPATIENT_PHARMACY,
            INPATIENT_LAB,
        ],
        rx: None,
    },
    Scenario {
        diagnoses: &[
            icd("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
            icd("I10", "Essential (primary) hypertension"),
            icd("E78.5", "Hyperlipidemia, unspecified"),
        ],
        procedures: &[pcs(
            "02703DZ",
            "Dilation of Coronary Artery, One Artery with Intraluminal Device, Percutaneous Approach",
        )],
        drg: drg(
            "247",
            "Percutaneous cardiovascular procedures with drug-eluting stent without MCC",
        ),
        stay_nights: 3,
        lines: &[
            Line::new(NOT_APPLICABLE, 4800).rev("0200", "Intensive Care - General"),
            ROOM_BOARD.units(2),
            Line::new(
                cpt(
                    "92928",
                    "Percutaneous transcatheter placement of intracoronary stent",
                ),
                14500,
            )
            .rev("0481", "Cardiology - Cardiac Cath Lab"),
            INPATIENT_PHARMACY,
            INPATIENT_LAB,
        ],
        rx: None,
    },
    Scenario {
        diagnoses: &[icd(
            "M17.11",
            "Unilateral primary osteoarthritis, right knee",
        )],
        procedures: &[pcs(
            "0SRC0JZ",
            "Replacement of Right Knee Joint with Synthetic Substitute, Open Approach",
        )],
        drg: drg(
            "470",
            "Major hip and knee joint replacement or reattachment of lower extremity without MCC",
        ),
        stay_nights: 2,
        lines: &[
            ROOM_BOARD.units(2),
            Line::new(
                cpt("27447", "Arthroplasty, knee, condyle and plateau"),
                18000,
            )
            .rev("0360", "Operating Room Services - General"),
            Line::new(NOT_APPLICABLE, 9500)
                .rev("0278", "Medical/Surgical Supplies - Other Implants"),
            Line::new(NOT_APPLICABLE, 650).rev("0420", "Physical Therapy - General"),
            INPATIENT_PHARMACY,
        ],
        rx: None,
    },
];

const VENIPUNCTURE: Code = cpt("36415", "Collection of venous blood by venipuncture");
const METABOLIC_PANEL: Code = cpt("80053", "Comprehensive metabolic panel");
const HBA1C: Code = cpt("83036", "Hemoglobin; glycosylated (A1C)");

pub(crate) const OUTPATIENT: &[Scenario] = &[
    Scenario::visit(
        &[
            icd("R07.9", "Chest pain, unspecified"),
            icd("I10", "Essential (primary) hypertension"),
        ],
        &[
            Line::new(
                cpt(
                    "99284",
                    "Emergency department visit, moderate medical decision making",
                ),
                1850,
            )
            .rev("0450", "Emergency Room - General"),
            Line::new(METABOLIC_PANEL, 210).rev("0300", "Laboratory - General"),
            Line::new(cpt("84484", "Troponin, quantitative"), 180)
                .rev("0300", "Laboratory - General"),
            Line::new(cpt("71046", "Radiologic examination, chest; 2 views"), 420)
                .rev("0320", "Radiology - Diagnostic - General"),
            Line::new(
                cpt("93005", "Electrocardiogram, routine; tracing only"),
                260,
            )
            .rev("0730", "EKG/ECG - General"),
        ],
    ),
    Scenario::visit(
        &[icd(
            "Z12.11",
            "Encounter for screening for malignant neoplasm of colon",
        )],
        &[
            Line::new(cpt("45378", "Colonoscopy, flexible; diagnostic"), 3200)
                .rev("0750", "Gastrointestinal Services - General")
                .preventive(),
            Line::new(hcpcs("J2704", "Injection, propofol, 10 mg"), 6)
                .rev("0250", "Pharmacy - General")
                .units(20)
                .preventive(),
        ],
    ),
    Scenario::visit(
        &[icd("M25.561", "Pain in right knee")],
        &[Line::new(
            cpt(
                "73721",
                "MRI any joint of lower extremity; without contrast",
            ),
            2100,
        )
        .rev("0610", "Magnetic Resonance Technology - General")],
    ),
    Scenario::visit(
        &[
            icd("E78.5", "Hyperlipidemia, unspecified"),
            icd("E11.9", "Type 2 diabetes mellitus without complications"),
        ],
        &[
            Line::new(cpt("80061", "Lipid panel"), 160).rev("0300", "Laboratory - General"),
            Line::new(HBA1C, 95).rev("0300", "Laboratory - General"),
            Line::new(VENIPUNCTURE, 25).rev("0300", "Laboratory - General"),
        ],
    ),
];

const OFFICE_VISIT_EST: Code = cpt(
    "99213",
    "Office or other outpatient visit, established patient, low medical decision making",
);

pub(crate) const PROFESSIONAL: &[Scenario] = &[
    Scenario::visit(
        &[icd("I10", "Essential (primary) hypertension")],
        &[
            Line::new(OFFICE_VISIT_EST, 185),
            Line::new(
                cpt(
                    "93000",
                    "Electrocardiogram, routine; with interpretation and report",
                ),
                90,
            ),
        ],
    ),
    Scenario::visit(
        &[
            icd("E11.9", "Type 2 diabetes mellitus without complications"),
            icd("E78.5", "Hyperlipidemia, unspecified"),
        ],
        &[
            Line::new(
                cpt(
                    "99214",
                    "Office or other outpatient visit, established patient, moderate medical decision making",
                ),
                260,
            ),
            Line::new(HBA1C, 55),
            Line::new(VENIPUNCTURE, 15),
        ],
    ),
    Scenario::visit(
        &[icd(
            "J06.9",
            "Acute upper respiratory infection, unspecified",
        )],
        &[
            Line::new(OFFICE_VISIT_EST, 185),
            Line::new(
                cpt(
                    "87880",
                    "Infectious agent antigen detection, Streptococcus, group A",
                ),
                45,
            ),
        ],
    ),
    Scenario::visit(
        &[icd(
            "Z00.00",
            "Encounter for general adult medical examination without abnormal findings",
        )],
        &[
            Line::new(
                cpt(
                    "99396",
                    "Periodic preventive medicine visit, established patient, 40-64 years",
                ),
                320,
            )
            .preventive(),
            Line::new(METABOLIC_PANEL, 70).preventive(),
            Line::new(VENIPUNCTURE, 15).preventive(),
        ],
    ),
    Scenario::visit(
        &[icd("Z23", "Encounter for immunization")],
        &[
            Line::new(
                cpt(
                    "90686",
                    "Influenza virus vaccine, quadrivalent, preservative free, intramuscular",
                ),
                45,
            )
            .preventive(),
            Line::new(
                hcpcs("G0008", "Administration of influenza virus vaccine"),
                30,
            )
            .preventive(),
        ],
    ),
    Scenario::visit(
        &[icd("M54.50", "Low back pain, unspecified")],
        &[
            Line::new(cpt("97110", "Therapeutic exercises, each 15 minutes"), 55).units(3),
            Line::new(
                cpt("97140", "Manual therapy techniques, each 15 minutes"),
                50,
            )
            .units(2),
        ],
    ),
    Scenario::visit(
        &[icd(
            "S93.401A",
            "Sprain of unspecified ligament of right ankle, initial encounter",
        )],
        &[
            Line::new(
                cpt(
                    "99203",
                    "Office or other outpatient visit, new patient, low medical decision making",
                ),
                210,
            ),
            Line::new(
                cpt(
                    "73610",
                    "Radiologic examination, ankle; complete, minimum of 3 views",
                ),
                140,
            ),
        ],
    ),
];

pub(crate) const ORAL: &[Scenario] = &[
    Scenario::visit(
        &[icd(
            "Z01.20",
            "Encounter for dental examination and cleaning without abnormal findings",
        )],
        &[
            Line::new(
                cdt("D0120", "Periodic oral evaluation - established patient"),
                65,
            )
            .preventive(),
            Line::new(cdt("D1110", "Prophylaxis - adult"), 115).preventive(),
            Line::new(cdt("D0274", "Bitewings - four radiographic images"), 85).preventive(),
        ],
    ),
    Scenario::visit(
        &[icd(
            "K02.52",
            "Dental caries on pit and fissure surface penetrating into dentin",
        )],
        &[
            Line::new(
                cdt("D0140", "Limited oral evaluation - problem focused"),
                90,
            ),
            Line::new(
                cdt("D2392", "Resin-based composite - two surfaces, posterior"),
                245,
            )
            .tooth("30", &["M", "O"]),
        ],
    ),
    Scenario::visit(
        &[icd(
            "K02.53",
            "Dental caries on pit and fissure surface penetrating into pulp",
        )],
        &[Line::new(cdt("D2740", "Crown - porcelain/ceramic"), 1250).tooth("14", &[])],
    ),
    Scenario::visit(
        &[icd(
            "K08.89",
            "Other specified disorders of teeth and supporting structures",
        )],
        &[
            Line::new(
                cdt("D0220", "Intraoral - periapical first radiographic image"),
                35,
            ),
            Line::new(
                cdt("D7140", "Extraction, erupted tooth or exposed root"),
                210,
            )
            .tooth("1", &[]),
        ],
    ),
];

/// The drug scenarios: one dispensed 11-digit NDC each, priced per fill.
pub(crate) const PHARMACY: &[Scenario] = &[
    Scenario::dispensed(
        &[Line::new(
            ndc("00093505698", "Atorvastatin Calcium 20 MG Oral Tablet"),
            38,
        )
        .quantity(90)],
        90,
        "TAB",
        false,
    ),
    Scenario::dispensed(
        &[Line::new(ndc("68180051301", "Lisinopril 10 MG Oral Tablet"), 18).quantity(90)],
        90,
        "TAB",
        false,
    ),
    Scenario::dispensed(
        &[Line::new(
            ndc("00378718093", "Metformin Hydrochloride 500 MG Oral Tablet"),
            12,
        )
        .quantity(60)],
        30,
        "TAB",
        false,
    ),
    Scenario::dispensed(
        &[Line::new(ndc("00169413212", "Semaglutide 2 MG/3ML Pen Injector"), 935).quantity(3)],
        28,
        "ML",
        true,
    ),
    Scenario::dispensed(
        &[Line::new(ndc("00006027731", "Sitagliptin 100 MG Oral Tablet"), 560).quantity(30)],
        30,
        "TAB",
        true,
    ),
    Scenario::dispensed(
        &[Line::new(ndc("00093415273", "Amoxicillin 500 MG Oral Capsule"), 14).quantity(30)],
        10,
        "CAP",
        false,
    ),
    Scenario::dispensed(
        &[Line::new(ndc("59762330201", "Sertraline 50 MG Oral Tablet"), 11).quantity(30)],
        30,
        "TAB",
        false,
    ),
    Scenario::dispensed(
        &[Line::new(
            ndc(
                "00173069600",
                "Fluticasone/Salmeterol 250/50 MCG Inhalation Powder",
            ),
            480,
        )
        .quantity(1)],
        30,
        "EA",
        true,
    ),
];
