-- suspend defaults to false; removing the field rather than writing false
-- leaves the live object as manifests usually state it (without the field),
-- so Argo CD shows no drift after a resume.
obj.spec.suspend = nil
return obj
