Register-ObjectEvent -InputObject ([System.Net.NetworkInformation.NetworkChange]) -EventName NetworkAddressChanged -SourceIdentifier 'trellis.address' | Out-Null
Register-ObjectEvent -InputObject ([System.Net.NetworkInformation.NetworkChange]) -EventName NetworkAvailabilityChanged -SourceIdentifier 'trellis.link' | Out-Null
[Console]::Out.WriteLine('ready')
[Console]::Out.Flush()
while ($true) {
  $e = Wait-Event
  Remove-Event -EventIdentifier $e.EventIdentifier
  [Console]::Out.WriteLine($e.SourceIdentifier)
  [Console]::Out.Flush()
}
