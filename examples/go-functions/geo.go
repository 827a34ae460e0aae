package functions

import (
	"errors"
	"math"
)

const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// Encode returns the 12-character geohash of a latitude and longitude.
func Encode(lat, lng float64) string {
	latR, lngR := [2]float64{-90, 90}, [2]float64{-180, 180}
	out := make([]byte, 0, 12)
	bit, ch, even := 0, 0, true
	for len(out) < 12 {
		r, v := &latR, lat
		if even {
			r, v = &lngR, lng
		}
		mid := (r[0] + r[1]) / 2
		if v >= mid {
			ch = ch<<1 | 1
			r[0] = mid
		} else {
			ch <<= 1
			r[1] = mid
		}
		even = !even
		if bit++; bit == 5 {
			out = append(out, base32[ch])
			bit, ch = 0, 0
		}
	}
	return string(out)
}

// Point is a position on Earth in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Distance is the great-circle distance between two points in kilometres.
// Latitudes outside [-90, 90] are an error.
func Distance(a, b Point) (float64, error) {
	if math.Abs(a.Lat) > 90 || math.Abs(b.Lat) > 90 {
		return 0, errors.New("latitude must be between -90 and 90")
	}
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat, dLng := rad(b.Lat-a.Lat), rad(b.Lng-a.Lng)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Sin(dLng/2)*math.Sin(dLng/2)
	return math.Round(2*6371*math.Asin(math.Sqrt(h))*10) / 10, nil
}
