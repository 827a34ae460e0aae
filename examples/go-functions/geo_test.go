package functions

import "testing"

func TestEncode(t *testing.T) {
	// Reference value from the geohash definition (geohash.org/u4pruydqqvj).
	if got := Encode(57.64911, 10.40744); got[:11] != "u4pruydqqvj" {
		t.Fatalf("Encode = %s", got)
	}
}

func TestDistance(t *testing.T) {
	d, err := Distance(Point{51.5007, -0.1246}, Point{40.6892, -74.0445})
	if err != nil || d < 5570 || d > 5580 {
		t.Fatalf("London-New York = %v, %v", d, err)
	}
	if _, err := Distance(Point{Lat: 91}, Point{}); err == nil {
		t.Fatal("no error for latitude 91")
	}
}
