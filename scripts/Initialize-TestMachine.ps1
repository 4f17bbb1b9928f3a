<#
.SYNOPSIS
One-time preparation of a test VM for vmwalk.sys.

.DESCRIPTION
1. Checks Secure Boot and enables test signing (bcdedit /set testsigning on).
2. Trusts the test certificate that cargo make wrote (WDRLocalTestCert.cer)
   in LocalMachine Root and TrustedPublisher.
3. Sets the Debug Print Filter value IHVDRIVER to 0xF so that the driver's
   info-level DbgPrintEx lines are shown.
Every step is idempotent. Reboot afterwards when the script says so.

.PARAMETER PackagePath
Folder with vmwalk.sys and WDRLocalTestCert.cer (cargo make's
target\<profile>\vmwalk_package). Default: searched next to scripts\.

.PARAMETER CertificatePath
The .cer to trust. Default: WDRLocalTestCert.cer in the package folder.

.PARAMETER SkipCertificate
Do not touch the certificate stores.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\scripts\Initialize-TestMachine.ps1 -WhatIf

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\scripts\Initialize-TestMachine.ps1 -PackagePath C:\vmwalk\vmwalk_package
#>
#Requires -Version 5.1
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string]$PackagePath,
    [string]$CertificatePath,
    [switch]$SkipCertificate
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Import-Module -Name (Join-Path $PSScriptRoot 'VmwalkTools.psm1') -Force

Assert-Administrator

$rebootNeeded = $false

Write-Host '== Test signing'
if (Enable-VmwalkTestSigning -WhatIf:$WhatIfPreference) { $rebootNeeded = $true }

Write-Host '== Test certificate'
if ($SkipCertificate) {
    Write-Host 'Skipped (-SkipCertificate).'
} else {
    if (-not $CertificatePath) {
        $CertificatePath = Join-Path (Resolve-VmwalkPackage -PackagePath $PackagePath) 'WDRLocalTestCert.cer'
    }
    Add-VmwalkTestCertificate -CertificatePath $CertificatePath -WhatIf:$WhatIfPreference
}

Write-Host '== Kernel debug output'
if (Enable-VmwalkDebugPrint -WhatIf:$WhatIfPreference) { $rebootNeeded = $true }

if ($rebootNeeded) {
    Write-Host 'Reboot now (Restart-Computer) so that test signing and the Debug Print Filter take effect.'
} else {
    Write-Host 'Ready: no reboot needed.'
}
