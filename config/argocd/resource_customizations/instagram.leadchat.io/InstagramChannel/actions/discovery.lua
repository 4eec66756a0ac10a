-- A suspended channel makes no Instagram calls at all, so asking it to
-- refresh would only record a request nobody acts on: offer resume instead.
local actions = {}
local suspended = obj.spec.suspend == true

actions["refresh"] = {
  ["disabled"] = suspended,
  ["iconClass"] = "fa fa-fw fa-sync",
  ["displayName"] = "Refresh token, account and subscription",
}
actions["suspend"] = {
  ["disabled"] = suspended,
  ["iconClass"] = "fa fa-fw fa-pause",
  ["displayName"] = "Suspend",
}
actions["resume"] = {
  ["disabled"] = not suspended,
  ["iconClass"] = "fa fa-fw fa-play",
  ["displayName"] = "Resume",
}
return actions
