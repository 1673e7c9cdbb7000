//! FHIR R4 resource type names, and which of them carry patient data.

/// Resource types whose instances describe a patient or their care (sorted).
const PATIENT_DATA: &[&str] = &[
    "Account",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BodyStructure",
    "Bundle",
    "CarePlan",
    "CareTeam",
    "ChargeItem",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "Communication",
    "CommunicationRequest",
    "Composition",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "Encounter",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "Group",
    "GuidanceResponse",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "Invoice",
    "List",
    "MeasureReport",
    "Media",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "MolecularSequence",
    "NutritionOrder",
    "Observation",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "RiskAssessment",
    "Schedule",
    "ServiceRequest",
    "Specimen",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "VisionPrescription",
];

/// Resource types that hold definitions, terminology, directories or
/// infrastructure rather than patient data (sorted).
const OTHER: &[&str] = &[
    "ActivityDefinition",
    "BiologicallyDerivedProduct",
    "CapabilityStatement",
    "CatalogEntry",
    "ChargeItemDefinition",
    "CodeSystem",
    "CompartmentDefinition",
    "ConceptMap",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "EffectEvidenceSynthesis",
    "Endpoint",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "GraphDefinition",
    "HealthcareService",
    "ImplementationGuide",
    "InsurancePlan",
    "Library",
    "Linkage",
    "Location",
    "Measure",
    "Medication",
    "MedicationKnowledge",
    "MedicinalProduct",
    "MessageDefinition",
    "MessageHeader",
    "NamingSystem",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Questionnaire",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "SearchParameter",
    "Slot",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
];

/// What a path segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceKind {
    /// A resource type whose instances are patient data.
    PatientData(&'static str),
    /// A FHIR resource type that is not patient data.
    Other,
}

/// Classify a path segment as a FHIR resource type name. Cheap: a length and
/// first-letter check rejects most segments before a binary search.
#[inline]
pub(crate) fn resource_kind(segment: &str) -> Option<ResourceKind> {
    let first = *segment.as_bytes().first()?;
    if !first.is_ascii_uppercase() || segment.len() < 4 || segment.len() > 40 {
        return None;
    }
    if let Ok(i) = PATIENT_DATA.binary_search(&segment) {
        return Some(ResourceKind::PatientData(PATIENT_DATA[i]));
    }
    if OTHER.binary_search(&segment).is_ok() {
        return Some(ResourceKind::Other);
    }
    None
}

/// A FHIR logical id: 1 to 64 of `A-Za-z0-9-.`.
#[inline]
pub(crate) fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_for_binary_search() {
        assert!(PATIENT_DATA.windows(2).all(|w| w[0] < w[1]));
        assert!(OTHER.windows(2).all(|w| w[0] < w[1]));
        assert!(PATIENT_DATA.iter().all(|t| OTHER.binary_search(t).is_err()));
    }

    #[test]
    fn classifies_segments() {
        assert_eq!(
            resource_kind("Patient"),
            Some(ResourceKind::PatientData("Patient"))
        );
        assert_eq!(resource_kind("ValueSet"), Some(ResourceKind::Other));
        assert_eq!(resource_kind("patient"), None);
        assert_eq!(resource_kind("fhir"), None);
        assert!(is_fhir_id("a-1.2"));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id(&"x".repeat(65)));
    }
}
