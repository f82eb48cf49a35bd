//! Names of the ATT&CK Enterprise techniques AWS rules use, for people
//! reading `vigil rules coverage` (the Navigator layer needs only the ids).
//! A technique missing here is shown by its id alone.

/// `(id, name)`, sub-techniques as ATT&CK writes them: `Parent: Child`.
const NAMES: &[(&str, &str)] = &[
    ("T1003", "OS Credential Dumping"),
    ("T1005", "Data from Local System"),
    ("T1016", "System Network Configuration Discovery"),
    ("T1020", "Automated Exfiltration"),
    ("T1021.004", "Remote Services: SSH"),
    ("T1021.007", "Remote Services: Cloud Services"),
    ("T1040", "Network Sniffing"),
    ("T1046", "Network Service Discovery"),
    ("T1048", "Exfiltration Over Alternative Protocol"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.001", "Command and Scripting Interpreter: PowerShell"),
    (
        "T1059.003",
        "Command and Scripting Interpreter: Windows Command Shell",
    ),
    ("T1059.004", "Command and Scripting Interpreter: Unix Shell"),
    ("T1059.009", "Command and Scripting Interpreter: Cloud API"),
    ("T1069.003", "Permission Groups Discovery: Cloud Groups"),
    ("T1070", "Indicator Removal"),
    ("T1078", "Valid Accounts"),
    ("T1078.001", "Valid Accounts: Default Accounts"),
    ("T1078.002", "Valid Accounts: Domain Accounts"),
    ("T1078.004", "Valid Accounts: Cloud Accounts"),
    ("T1082", "System Information Discovery"),
    ("T1087.004", "Account Discovery: Cloud Account"),
    ("T1098", "Account Manipulation"),
    (
        "T1098.001",
        "Account Manipulation: Additional Cloud Credentials",
    ),
    ("T1098.003", "Account Manipulation: Additional Cloud Roles"),
    ("T1098.004", "Account Manipulation: SSH Authorized Keys"),
    ("T1110", "Brute Force"),
    ("T1110.001", "Brute Force: Password Guessing"),
    ("T1110.003", "Brute Force: Password Spraying"),
    ("T1110.004", "Brute Force: Credential Stuffing"),
    ("T1133", "External Remote Services"),
    ("T1136", "Create Account"),
    ("T1136.003", "Create Account: Cloud Account"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1199", "Trusted Relationship"),
    ("T1201", "Password Policy Discovery"),
    ("T1213", "Data from Information Repositories"),
    (
        "T1484.002",
        "Domain or Tenant Policy Modification: Trust Modification",
    ),
    ("T1485", "Data Destruction"),
    ("T1486", "Data Encrypted for Impact"),
    ("T1490", "Inhibit System Recovery"),
    ("T1496", "Resource Hijacking"),
    ("T1496.001", "Resource Hijacking: Compute Hijacking"),
    ("T1496.004", "Resource Hijacking: Cloud Service Hijacking"),
    (
        "T1518.001",
        "Software Discovery: Security Software Discovery",
    ),
    ("T1525", "Implant Internal Image"),
    ("T1526", "Cloud Service Discovery"),
    ("T1528", "Steal Application Access Token"),
    ("T1530", "Data from Cloud Storage"),
    ("T1531", "Account Access Removal"),
    ("T1535", "Unused/Unsupported Cloud Regions"),
    ("T1537", "Transfer Data to Cloud Account"),
    ("T1538", "Cloud Service Dashboard"),
    ("T1548", "Abuse Elevation Control Mechanism"),
    (
        "T1548.005",
        "Abuse Elevation Control Mechanism: Temporary Elevated Cloud Access",
    ),
    ("T1550", "Use Alternate Authentication Material"),
    (
        "T1550.001",
        "Use Alternate Authentication Material: Application Access Token",
    ),
    ("T1552", "Unsecured Credentials"),
    ("T1552.001", "Unsecured Credentials: Credentials In Files"),
    (
        "T1552.005",
        "Unsecured Credentials: Cloud Instance Metadata API",
    ),
    ("T1555", "Credentials from Password Stores"),
    (
        "T1555.006",
        "Credentials from Password Stores: Cloud Secrets Management Stores",
    ),
    ("T1556", "Modify Authentication Process"),
    (
        "T1556.006",
        "Modify Authentication Process: Multi-Factor Authentication",
    ),
    (
        "T1556.007",
        "Modify Authentication Process: Hybrid Identity",
    ),
    ("T1562", "Impair Defenses"),
    ("T1562.001", "Impair Defenses: Disable or Modify Tools"),
    (
        "T1562.007",
        "Impair Defenses: Disable or Modify Cloud Firewall",
    ),
    ("T1562.008", "Impair Defenses: Disable or Modify Cloud Logs"),
    ("T1565", "Data Manipulation"),
    ("T1566", "Phishing"),
    ("T1566.002", "Phishing: Spearphishing Link"),
    ("T1567", "Exfiltration Over Web Service"),
    ("T1578", "Modify Cloud Compute Infrastructure"),
    (
        "T1578.001",
        "Modify Cloud Compute Infrastructure: Create Snapshot",
    ),
    (
        "T1578.002",
        "Modify Cloud Compute Infrastructure: Create Cloud Instance",
    ),
    (
        "T1578.003",
        "Modify Cloud Compute Infrastructure: Delete Cloud Instance",
    ),
    (
        "T1578.005",
        "Modify Cloud Compute Infrastructure: Modify Cloud Compute Configurations",
    ),
    ("T1580", "Cloud Infrastructure Discovery"),
    ("T1583.006", "Acquire Infrastructure: Web Services"),
    ("T1585.003", "Establish Accounts: Cloud Accounts"),
    ("T1592", "Gather Victim Host Information"),
    ("T1599", "Network Boundary Bridging"),
    ("T1606.002", "Forge Web Credentials: SAML Tokens"),
    (
        "T1608.003",
        "Stage Capabilities: Install Digital Certificate",
    ),
    ("T1619", "Cloud Storage Object Discovery"),
    ("T1621", "Multi-Factor Authentication Request Generation"),
    ("T1648", "Serverless Execution"),
    ("T1649", "Steal or Forge Authentication Certificates"),
    ("T1651", "Cloud Administration Command"),
    ("T1654", "Log Enumeration"),
    ("T1657", "Financial Theft"),
    ("T1666", "Modify Cloud Resource Hierarchy"),
];

/// The technique's ATT&CK name, matched without regard to case (`t1078`).
pub(crate) fn name(id: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(id))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_unique_so_a_missing_one_is_easy_to_add() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(name("t1078.004"), Some("Valid Accounts: Cloud Accounts"));
        assert_eq!(name("T9999"), None);
    }
}
