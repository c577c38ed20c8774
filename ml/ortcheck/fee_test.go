package ortcheck

import "testing"

func feeModel(tb testing.TB) testModel {
	tb.Helper()
	tb.Skip("fee model not wired yet")
	return testModel{}
}
