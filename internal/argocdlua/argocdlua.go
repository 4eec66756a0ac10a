// Package argocdlua runs Argo CD resource customization scripts (health
// checks and actions) the way Argo CD does: each Lua script gets the object
// as the global obj in a gopher-lua state with only the libraries Argo CD
// grants custom scripts (package, base, table and a safe os with date and
// time). The Argo CD tests and the end-to-end suite share it.
package argocdlua

import (
	"context"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// scriptTimeout is the budget Argo CD gives a script.
const scriptTimeout = time.Second

// VM runs scripts as Argo CD does. Now fixes the clock os.date and os.time
// read, so actions give reproducible output; zero means the wall clock.
type VM struct {
	Now time.Time
}

// Run executes script with obj as the global obj and returns the script's
// return value converted to Go. obj also guides the conversion of empty
// tables back to lists or maps, which Lua cannot tell apart.
func (vm VM) Run(script string, obj map[string]any) (any, error) {
	// Custom scripts in argocd-cm run without the open libraries unless
	// resource.customizations.useOpenLibs is set; ours must not need them.
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("open Lua library %s: %w", lib.name, err)
		}
	}
	osLib := l.NewTable()
	l.SetField(osLib, "date", l.NewFunction(vm.osDate))
	l.SetField(osLib, "time", l.NewFunction(vm.osTime))
	l.SetGlobal(lua.OsLibName, osLib)

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)

	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	return fromLua(l.Get(-1), obj)
}

// osDate implements os.date for the formats a Kubernetes timestamp needs.
// A leading "!" asks for UTC; the Argo CD containers run in UTC anyway, so
// local time is UTC here too.
func (vm VM) osDate(l *lua.LState) int {
	format := l.OptString(1, "%c")
	t := vm.now()
	if l.GetTop() >= 2 {
		t = time.Unix(l.CheckInt64(2), 0)
	}
	t = t.UTC()
	format = strings.TrimPrefix(format, "!")
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i == len(format)-1 {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case '%':
			b.WriteByte('%')
		default:
			// Better a failing test than a script that relies on a
			// conversion this harness would get wrong.
			l.RaiseError("os.date: conversion %%%c is not supported by the test harness", format[i])
		}
	}
	l.Push(lua.LString(b.String()))
	return 1
}

func (vm VM) osTime(l *lua.LState) int {
	l.Push(lua.LNumber(vm.now().Unix()))
	return 1
}

// toLua converts a decoded JSON/YAML value into Lua: maps become tables
// keyed by string, lists become 1-based tables.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, toLua(l, item))
		}
		return t
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	default:
		panic(fmt.Sprintf("toLua: unsupported type %T", v))
	}
}

// fromLua converts a Lua value back. A table with keys 1..n is a list, one
// with string keys a map. An empty table takes the kind of the value it
// replaced in original, as Argo CD does, so that an untouched empty list
// does not come back as a map.
func fromLua(v lua.LValue, original any) (any, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LString:
		return string(v), nil
	case lua.LNumber:
		return float64(v), nil
	case *lua.LTable:
		return tableFromLua(v, original)
	default:
		return nil, fmt.Errorf("unsupported Lua value of type %s", v.Type())
	}
}

func tableFromLua(t *lua.LTable, original any) (any, error) {
	n := t.MaxN()
	keys := 0
	t.ForEach(func(lua.LValue, lua.LValue) { keys++ })
	if keys == 0 {
		if _, ok := original.([]any); ok {
			return []any{}, nil
		}
		return map[string]any{}, nil
	}
	if n > 0 {
		if keys != n {
			return nil, fmt.Errorf("table mixes list items and keys")
		}
		origList, _ := original.([]any)
		list := make([]any, n)
		for i := range n {
			var orig any
			if i < len(origList) {
				orig = origList[i]
			}
			item, err := fromLua(t.RawGetInt(i+1), orig)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			list[i] = item
		}
		return list, nil
	}
	origMap, _ := original.(map[string]any)
	m := make(map[string]any, keys)
	var err error
	t.ForEach(func(k, val lua.LValue) {
		if err != nil {
			return
		}
		key, ok := k.(lua.LString)
		if !ok {
			err = fmt.Errorf("table key %v is not a string", k)
			return
		}
		var item any
		item, err = fromLua(val, origMap[string(key)])
		if err != nil {
			err = fmt.Errorf("%s: %w", key, err)
			return
		}
		m[string(key)] = item
	})
	return m, err
}

func (vm VM) now() time.Time {
	if vm.Now.IsZero() {
		return time.Now()
	}
	return vm.Now
}

// Health is what a health script returns.
type Health struct {
	Status  string
	Message string
}

// Health runs a health script over obj.
func (vm VM) Health(script string, obj map[string]any) (Health, error) {
	out, err := vm.Run(script, obj)
	if err != nil {
		return Health{}, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return Health{}, fmt.Errorf("health script returned %T, want a table", out)
	}
	status, _ := m["status"].(string)
	message, _ := m["message"].(string)
	return Health{Status: status, Message: message}, nil
}
